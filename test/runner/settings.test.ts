// Settings that fail the function's declared schema: `--check` refuses them, and a running runner
// discards each event as Invalid Settings (with a record) without running the function.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SettingDefinition } from '../../api/settings.js';
import { readDeliveryRecords } from '../../runner/delivery-records.js';
import {
  publish,
  RunnerWorld,
  runDfn,
  STARTUP_TIMEOUT_MS,
  TEST_INSTANCE,
  track,
  waitFor,
} from './harness.js';

const FUNCTION = `async function onTrack(event, settings) { await fetch(settings.url + '/track', { method: 'POST' }); }`;
const SCHEMA: SettingDefinition[] = [
  { name: 'url', type: 'string', required: true },
  { name: 'apiKey', type: 'string', required: true, sensitive: true },
];

describe('settings schema', () => {
  let w: RunnerWorld;

  beforeAll(async () => {
    w = await RunnerWorld.start();
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await w?.dispose();
  });

  const configDir = (secrets?: Record<string, string>) =>
    w.configDir({
      functionSource: FUNCTION,
      settings: { url: w.dest.url },
      ...(secrets ? { secrets } : {}),
      config: { function: { revision: 'rev-1', settingsSchema: SCHEMA } },
    });

  it('dfn runner --check names the missing setting and exits 2', async () => {
    const run = await runDfn(['runner', '--config', configDir(), '--check']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('setting "apiKey" is required');
    const ok = await runDfn(['runner', '--config', configDir({ apiKey: 'k' }), '--check']);
    expect(ok.code).toBe(0);
  });

  it('a running runner discards events as Invalid Settings without calling the destination', async () => {
    const runner = w.startRunner(configDir());
    try {
      await runner.consuming();
      const event = track({});
      await publish(w.f, [event]);
      const [record] = await waitFor('the Invalid Settings record', async () => {
        const records = await readDeliveryRecords(w.f.jsm, w.f.t, TEST_INSTANCE);
        const mine = records.filter((r) => r.messageId === event.messageId);
        return mine.length ? mine : undefined;
      });
      expect(record).toMatchObject({
        disposition: 'discard',
        errorType: 'InvalidSettings',
        message: 'setting "apiKey" is required',
      });
      expect(w.dest.requests).toHaveLength(0);
    } finally {
      await runner.dispose();
    }
  });
});
