// The whole data path as separate processes: Segment's analytics-node client → `dfn gateway` → JetStream →
// `dfn runner` (the example webhook function) → a destination API on 127.0.0.1.

import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Analytics } from '@segment/analytics-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Destination } from '../helpers/destination.js';
import { runDfn } from '../helpers/dfn.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { NatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait.js';
import { RunnerProcess, removeDir, writeConfigDir } from '../runner/harness.js';

const WRITE_KEY = 'e2e_write_key';
const API_KEY = 'sk_e2e_secret';
const webhook = readFileSync(new URL('../../examples/webhook/function.js', import.meta.url), 'utf8');

describe('analytics-node → gateway → JetStream → runner → destination', () => {
  let nats: NatsServer;
  let dest: Destination;
  let gateway: GatewayProcess;
  let gatewayUrl: string;
  let runner: RunnerProcess;
  let runnerDir: string;

  beforeAll(async () => {
    nats = await NatsServer.start();
    dest = await Destination.start();
    gateway = await GatewayProcess.start(nats.url, { [WRITE_KEY]: 'web' });
    gatewayUrl = gateway.url;

    runnerDir = writeConfigDir({
      natsUrl: nats.url,
      source: 'web',
      instance: { namespace: 'shop', name: 'orders-webhook' },
      functionSource: webhook,
      settings: { endpoint: dest.url },
      secrets: { apiKey: API_KEY },
    });
    runner = RunnerProcess.start(runnerDir);
    await runner.consuming();
  }, 120_000);

  afterAll(async () => {
    await runner?.dispose();
    await gateway?.stop();
    await dest?.close();
    await nats?.dispose();
    if (runnerDir) removeDir(runnerDir);
  });

  it('delivers what a Segment client sends, signed and authenticated as the function says', async () => {
    const analytics = new Analytics({ writeKey: WRITE_KEY, host: gatewayUrl, flushInterval: 50 });
    analytics.track({
      userId: 'user-1',
      event: 'Order Completed',
      properties: { total: 42 },
      messageId: 'e2e-track-1',
    });
    analytics.identify({
      userId: 'user-1',
      traits: { email: 'ada@example.com' },
      messageId: 'e2e-identify-1',
    });
    analytics.page({ userId: 'user-1', name: 'Home', messageId: 'e2e-page-1' }); // no onPage: discarded
    await analytics.closeAndFlush({ timeout: 30_000 });

    const received = await waitFor('both deliveries', () => {
      const byId = new Map(dest.requests.map((r) => [r.json().messageId as string, r]));
      return byId.has('e2e-track-1') && byId.has('e2e-identify-1') ? byId : undefined;
    });
    const track = received.get('e2e-track-1')!;
    expect(track.url).toBe('/events?type=track');
    expect(track.json()).toMatchObject({
      type: 'track',
      event: 'Order Completed',
      userId: 'user-1',
      properties: { total: 42 },
      context: { library: { name: '@segment/analytics-node' } },
    });
    expect(track.json().receivedAt).toEqual(expect.any(String));
    expect(track.headers.authorization).toBe(`Basic ${Buffer.from(`${API_KEY}:`).toString('base64')}`);
    expect(track.headers['x-signature']).toBe(createHmac('sha256', API_KEY).update(track.body).digest('hex'));
    expect(received.get('e2e-identify-1')!.json().traits).toEqual({ email: 'ada@example.com' });

    // The page event reached the runner and was discarded; `dfn deliveries` shows why.
    const record = await waitFor('the discard record', async () => {
      const run = await runDfn(['deliveries', 'shop/orders-webhook', '--json', '--nats-url', nats.url]);
      const records = run.code === 0 ? (JSON.parse(run.stdout) as Array<Record<string, unknown>>) : [];
      return records.find((r) => r.messageId === 'e2e-page-1');
    });
    expect(record).toMatchObject({ disposition: 'discard', errorType: 'UnsupportedEventType' });
    expect(dest.requests.some((r) => r.json().messageId === 'e2e-page-1')).toBe(false);
  });
});
