// Settings that fail the function's declared schema: `--check` refuses them, and a running runner
// discards each event as Invalid Settings (with a record) without running the function.

import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SettingDefinition } from '../../api/settings.js';
import { readDeliveryRecords } from '../../runner/delivery-records.js';
import { Destination } from '../helpers/destination.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  type Fixture,
  fixture,
  prepareTopology,
  publish,
  RunnerProcess,
  removeDir,
  runDfn,
  STARTUP_TIMEOUT_MS,
  TEST_INSTANCE,
  track,
  waitFor,
  writeConfigDir,
} from './harness.js';

const FUNCTION = `async function onTrack(event, settings) { await fetch(settings.url + '/track', { method: 'POST' }); }`;
const SCHEMA: SettingDefinition[] = [
  { name: 'url', type: 'string', required: true },
  { name: 'apiKey', type: 'string', required: true, sensitive: true },
];

describe('settings schema', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let f: Fixture;
  let dest: Destination;
  const dirs: string[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await nats.connect();
    f = await fixture(nc);
    dest = await Destination.start();
    await prepareTopology(f);
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await nc?.close();
    await dest?.close();
    await nats?.dispose();
    for (const d of dirs) removeDir(d);
  });

  const configDir = (secrets?: Record<string, string>) => {
    const dir = writeConfigDir({
      natsUrl: nats.url,
      functionSource: FUNCTION,
      settings: { url: dest.url },
      ...(secrets ? { secrets } : {}),
      config: { function: { revision: 'rev-1', settingsSchema: SCHEMA } },
    });
    dirs.push(dir);
    return dir;
  };

  it('dfn runner --check names the missing setting and exits 2', async () => {
    const run = await runDfn(['runner', '--config', configDir(), '--check']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('setting "apiKey" is required');
    const ok = await runDfn(['runner', '--config', configDir({ apiKey: 'k' }), '--check']);
    expect(ok.code).toBe(0);
  });

  it('a running runner discards events as Invalid Settings without calling the destination', async () => {
    const runner = RunnerProcess.start(configDir());
    try {
      await runner.consuming();
      const event = track({});
      await publish(f, [event]);
      const [record] = await waitFor('the Invalid Settings record', async () => {
        const records = await readDeliveryRecords(f.js, f.jsm, f.t, TEST_INSTANCE);
        const mine = records.filter((r) => r.messageId === event.messageId);
        return mine.length ? mine : undefined;
      });
      expect(record).toMatchObject({
        disposition: 'discard',
        errorType: 'InvalidSettings',
        message: 'setting "apiKey" is required',
      });
      expect(dest.requests).toHaveLength(0);
    } finally {
      await runner.dispose();
    }
  });
});
