// The gateway's JetStream publisher: acks matched to publishes over one reply inbox, JetStream's errors
// and silences turned into the codes publish.ts classifies, nothing left waiting forever.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreams, topology } from '../../api/jetstream.js';
import { JetStreamPublisher, PublishError } from '../../gateway/jetstream-publisher.js';
import { classifyPublishError } from '../../gateway/publish.js';
import { createGateway } from '../../gateway/server.js';
import { NatsServer } from '../helpers/nats-server.js';
import { freePort } from '../helpers/ports.js';
import { natsServerPath } from '../helpers/tools.js';
import { waitFor } from '../helpers/wait.js';
import { basic, GatewayHarness, WRITE_KEY } from './harness.js';

let nats: NatsServer;
let nc: NatsConnection;
let publisher: JetStreamPublisher | undefined;
const t = topology('jspub');
const small = topology('jspubfull');
const data = (s: string) => new TextEncoder().encode(s);

beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await connect({ servers: nats.url });
  await ensureStreams(await nc.jetstreamManager(), t, { storage: 'memory' });
  await ensureStreams(await nc.jetstreamManager(), small, { storage: 'memory', eventsMaxBytes: 2048 });
});
afterAll(async () => {
  await nc.close();
  await nats.dispose();
});
afterEach(() => {
  publisher?.close();
  publisher = undefined;
});

describe('JetStreamPublisher', () => {
  it('resolves each publish with its own acknowledgement, out of many concurrent ones', async () => {
    publisher = new JetStreamPublisher(nc, 5000);
    const acks = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        publisher!.publish('jspub.events.s.track', data(`${i}`), `m-${i}`),
      ),
    );
    expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(acks.every((a) => a.stream === t.eventsStream && !a.duplicate)).toBe(true);
    const jsm = await nc.jetstreamManager();
    const m = await jsm.streams.getMessage(t.eventsStream, { seq: 7 });
    expect(m.string()).toBe('6');
    expect(m.header.get('Nats-Msg-Id')).toBe('m-6');
    await jsm.streams.purge(t.eventsStream);
  });

  it('reports a resent message id as a duplicate', async () => {
    publisher = new JetStreamPublisher(nc, 5000);
    await publisher.publish('jspub.events.s.track', data('x'), 'dup');
    const again = await publisher.publish('jspub.events.s.track', data('x'), 'dup');
    expect(again.duplicate).toBe(true);
    await (await nc.jetstreamManager()).streams.purge(t.eventsStream);
  });

  it("rejects with JetStream's API error when the stream refuses (full)", async () => {
    publisher = new JetStreamPublisher(nc, 5000);
    const big = data('y'.repeat(1500));
    await publisher.publish('jspubfull.events.s.track', big, 'fill-1');
    const err = await publisher.publish('jspubfull.events.s.track', big, 'fill-2').catch((e) => e);
    expect(err).toBeInstanceOf(PublishError);
    expect(err.api_error).toMatchObject({ err_code: 10077 });
    expect(classifyPublishError(err)).toBe('GW_STREAM_FULL');
  });

  it('rejects with code 503 when no stream listens on the subject', async () => {
    publisher = new JetStreamPublisher(nc, 5000);
    const err = await publisher.publish('nostream.here', data('x'), 'n').catch((e) => e);
    expect(err.code).toBe('503');
    expect(classifyPublishError(err)).toBe('GW_STREAM_UNAVAILABLE');
  });

  it('rejects with TIMEOUT when nothing acknowledges within the timeout', async () => {
    const silent = nc.subscribe('silent.subject');
    publisher = new JetStreamPublisher(nc, 200);
    const err = await publisher.publish('silent.subject', data('x'), 's').catch((e) => e);
    expect(err.code).toBe('TIMEOUT');
    expect(classifyPublishError(err)).toBe('GW_PUBLISH_TIMEOUT');
    expect(publisher.inFlight).toBe(0);
    silent.unsubscribe();
  });

  it('fails everything still waiting when told the connection dropped', async () => {
    const silent = nc.subscribe('silent.other');
    publisher = new JetStreamPublisher(nc, 60_000);
    const waiting = [
      publisher.publish('silent.other', data('a'), 'a'),
      publisher.publish('silent.other', data('b'), 'b'),
    ];
    await nc.flush();
    publisher.failAll('DISCONNECT', 'gone');
    const errors = await Promise.all(waiting.map((p) => p.catch((e) => e)));
    expect(errors.map((e) => classifyPublishError(e))).toEqual([
      'GW_NATS_UNAVAILABLE',
      'GW_NATS_UNAVAILABLE',
    ]);
    silent.unsubscribe();
  });

  it('never sends a publish that failed before its turn to go out came (a drop in the same turn)', async () => {
    publisher = new JetStreamPublisher(nc, 5000);
    const jsm = await nc.jetstreamManager();
    await jsm.streams.purge(t.eventsStream);
    const lastSeq = (await jsm.streams.info(t.eventsStream)).state.last_seq;
    const failed = publisher.publish('jspub.events.s.track', data('told-503'), 'told-503').catch((e) => e);
    publisher.failAll('DISCONNECT', 'gone');
    expect(classifyPublishError(await failed)).toBe('GW_NATS_UNAVAILABLE');
    // Published on the same connection after it, so its ack comes after anything sent before it.
    const ack = await publisher.publish('jspub.events.s.track', data('next'), 'next');
    expect(ack.seq).toBe(lastSeq + 1);
    expect((await jsm.streams.info(t.eventsStream)).state.messages).toBe(1);
    expect((await jsm.streams.getMessage(t.eventsStream, { seq: ack.seq })).string()).toBe('next');
    expect(publisher.inFlight).toBe(0);
    await jsm.streams.purge(t.eventsStream);
  });

  it('matches every ack when publishes of many turns and their acks interleave', async () => {
    publisher = new JetStreamPublisher(nc, 5000);
    const jsm = await nc.jetstreamManager();
    await jsm.streams.purge(t.eventsStream);
    // Each group is published in a turn of its own, some while acks of earlier groups are arriving.
    const groups = await Promise.all(
      Array.from(
        { length: 20 },
        (_, g) =>
          new Promise<Array<{ seq: number; body: string }>>((resolve, reject) =>
            setTimeout(() => {
              const bodies = Array.from({ length: 5 }, (_, i) => `g${g}-${i}`);
              Promise.all(bodies.map((b) => publisher!.publish('jspub.events.s.track', data(b), b)))
                .then((acks) => resolve(acks.map((a, i) => ({ seq: a.seq, body: bodies[i]! }))))
                .catch(reject);
            }, g % 4),
          ),
      ),
    );
    const acks = groups.flat();
    expect(new Set(acks.map((a) => a.seq)).size).toBe(100);
    for (const a of acks.filter((_, i) => i % 9 === 0))
      expect((await jsm.streams.getMessage(t.eventsStream, { seq: a.seq })).string()).toBe(a.body);
    await jsm.streams.purge(t.eventsStream);
  });
});

describe('JetStreamPublisher without permission to its reply inbox', () => {
  it('keeps the connection readable and times publishes out, rather than killing the reader', async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'dfn-nats-perm-'));
    writeFileSync(
      join(dir, 'nats.conf'),
      `listen: "127.0.0.1:${port}"\nauthorization { users = [ { user: "gw", password: "pw", ` +
        'permissions: { publish: ">", subscribe: { deny: ["_INBOX.>"] } } } ] }\n',
    );
    const server = spawn(natsServerPath(), ['-c', join(dir, 'nats.conf')], { stdio: 'ignore' });
    let denied: NatsConnection | undefined;
    try {
      denied = await waitFor('nats-server with permissions', () =>
        connect({ servers: `nats://127.0.0.1:${port}`, user: 'gw', pass: 'pw' }).catch(() => undefined),
      );
      const errors: unknown[] = [];
      void (async () => {
        for await (const s of denied.status()) if (s.type === 'error') errors.push(s.data);
      })();
      publisher = new JetStreamPublisher(denied, 200);
      // The server answers the subscription with an error, then the flush's PING with a PONG: flush()
      // resolves only if the connection is still being read after the error.
      const flushed = await Promise.race([
        denied.flush().then(() => true),
        new Promise((r) => setTimeout(() => r(false), 10_000)),
      ]);
      expect(flushed).toBe(true);
      await waitFor('the permissions violation', () => errors.includes('PERMISSIONS_VIOLATION'), 5000);
      const err = await publisher.publish('jspub.events.s.track', data('x'), 'p').catch((e) => e);
      expect(err.code).toBe('TIMEOUT');
      expect(publisher.inboxError).toMatch(/cannot receive JetStream acknowledgements/);

      // A gateway in that position says so on /readyz and answers 503 at once instead of timing out.
      const keys = join(dir, 'keys.yaml');
      writeFileSync(keys, `${WRITE_KEY}: web\n`);
      const gw = await createGateway({ writeKeysFile: keys, natsUrl: `nats://gw:pw@127.0.0.1:${port}` });
      try {
        const ready = await waitFor('the gateway to notice', async () => {
          const r = await gw.app.inject({ method: 'GET', url: '/readyz' });
          return r.json().publish ? r : undefined;
        });
        expect(ready.statusCode).toBe(503);
        expect(ready.json()).toMatchObject({ status: 'not ready', nats: 'connected' });
        const res = await gw.app.inject({
          method: 'POST',
          url: '/v1/track',
          headers: { authorization: basic(WRITE_KEY), 'content-type': 'application/json' },
          payload: { userId: 'u', event: 'E' },
        });
        expect(res.statusCode).toBe(503);
        expect(res.json().code).toBe('GW_NATS_UNAVAILABLE');
      } finally {
        await gw.close();
      }
    } finally {
      await denied?.close();
      server.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the gateway when JetStream stays silent', () => {
  it('answers 503 GW_PUBLISH_TIMEOUT with Retry-After once the publish timeout passes', async () => {
    const h = await GatewayHarness.start(nats, { streams: false, gateway: { publishTimeoutMs: 300 } });
    // Something answers the subject (so no "no responders"), but it is not a stream: no ack ever comes.
    const silent = nc.subscribe(`${h.prefix}.events.>`);
    // The server must know of the subscription before the gateway publishes, or it answers "no responders".
    await nc.flush();
    try {
      const res = await h.post('/v1/track', { userId: 'u', event: 'E' }, { writeKey: WRITE_KEY });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(res.body.code).toBe('GW_PUBLISH_TIMEOUT');
      expect(await h.metric('dfn_gateway_events_in_flight')).toBe(0);
    } finally {
      silent.unsubscribe();
      await h.close();
    }
  });
});
