// streams.replicas reaches JetStream: `dfn operator --stream-replicas` sets num_replicas on every stream it
// creates. One nats-server holds only one replica, so 1 is what it stores and 3 is refused with NATS's reason.

import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreams, streamConfigs, topology } from '../../api/jetstream.js';
import { runDfn } from '../helpers/dfn.js';
import { NatsServer } from '../helpers/nats-server.js';

let nats: NatsServer;
beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats?.dispose();
});

describe('stream replicas', () => {
  it('every stream of the topology carries the replica count, 1 unless told', () => {
    const t = topology('dfn');
    expect(streamConfigs(t).map((c) => c.num_replicas)).toEqual(streamConfigs(t).map(() => 1));
    expect(streamConfigs(t, { replicas: 3 }).map((c) => c.num_replicas)).toEqual(
      streamConfigs(t).map(() => 3),
    );
  });

  it('a single server stores R1 streams and refuses R3 ones', async () => {
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await nc.jetstreamManager();
      await ensureStreams(jsm, topology('rone'), { replicas: 1, storage: 'memory' });
      expect((await jsm.streams.info('RONE_EVENTS')).config.num_replicas).toBe(1);
      await expect(
        ensureStreams(jsm, topology('rthree'), { replicas: 3, storage: 'memory' }),
      ).rejects.toThrow(/replicas/i);
    } finally {
      await nc.close();
    }
  });

  it('dfn operator refuses a replica count out of range before it starts', async () => {
    for (const bad of ['0', '6', 'three']) {
      const run = await runDfn([
        'operator',
        '--runner-image',
        'ghcr.io/dfn-dev/dfn:0.1.0',
        '--stream-replicas',
        bad,
      ]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('the stream replica count must be a whole number from 1 to 5');
    }
  });
});
