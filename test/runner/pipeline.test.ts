// Filters, data control and `integrations` end to end: what the destination receives, what is acknowledged
// without reaching the function, and the counters the runner publishes for it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerName, eventSubject } from '../../api/jetstream.js';
import { Destination } from '../helpers/destination.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  consumerState,
  type Fixture,
  fixture,
  prepareTopology,
  publish,
  RunnerProcess,
  RunnerWorld,
  removeDir,
  STARTUP_TIMEOUT_MS,
  TEST_INSTANCE,
  TEST_SOURCE,
  track,
  waitFor,
  watchStats,
  writeConfigDir,
} from './harness.js';

const FUNCTION = `
async function onTrack(event, settings) {
  await fetch(settings.url + '/track', { method: 'POST', body: JSON.stringify(event) });
}
async function onIdentify(event, settings) {
  await fetch(settings.url + '/identify', { method: 'POST', body: JSON.stringify(event) });
}
`;

describe('filters and data control before the function', () => {
  let w: RunnerWorld;
  let f: Fixture;
  let dest: Destination;
  let runner: RunnerProcess;
  let dir: string;

  beforeAll(async () => {
    w = await RunnerWorld.start();
    ({ f, dest } = w);
    dir = w.configDir({
      functionSource: FUNCTION,
      settings: { url: dest.url },
      config: {
        filters: {
          eventNames: ['Order Completed'],
          exclude: [{ field: 'properties.test', op: 'equals', value: true }],
          integrationNames: ['CRM'],
        },
        dataControl: { dropProperties: ['email'], dropTraits: ['phone'], dropContext: ['ip'] },
      },
    });
    runner = w.startRunner(dir);
    await runner.consuming();
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await w?.dispose();
  });

  it('delivers what passes, without the dropped fields, and acknowledges and counts what does not', async () => {
    const stats = watchStats(f);
    try {
      const pass = track(
        { total: 5, email: 'a@example.com' },
        { context: { ip: '10.1.1.1', locale: 'nb-NO' } },
      );
      const named = track({ total: 6 }, { integrations: { All: false, CRM: true } });
      const identify = {
        type: 'identify',
        userId: 'u1',
        messageId: `idf-${Date.now()}`,
        traits: { phone: '+47', name: 'Ann' },
      };
      const filtered = [
        track({ total: 1 }, { event: 'Product Viewed' }),
        track({ total: 2, test: true }),
        track({ total: 3 }, { integrations: { All: false } }),
        track({ total: 4 }, { integrations: { CRM: false } }),
      ];
      await publish(f, [pass, named, identify, ...filtered]);
      await waitFor('the deliveries', () => dest.requests.length === 3);
      await waitFor('everything acknowledged', async () => {
        const s = await consumerState(f, consumerName(TEST_INSTANCE));
        return s.pending === 0 && s.ackPending === 0;
      });

      const byId = new Map(dest.requests.map((r) => [r.json().messageId as string, r.json()]));
      expect([...byId.keys()].sort()).toEqual([pass.messageId, named.messageId, identify.messageId].sort());
      expect(byId.get(pass.messageId!).properties).toEqual({ total: 5 });
      expect(byId.get(pass.messageId!).context).toEqual({ locale: 'nb-NO' });
      expect(byId.get(identify.messageId).traits).toEqual({ name: 'Ann' });

      const s = await waitFor('the stats', () => {
        const latest = stats.latest();
        return latest && latest.counters.received === 7 && latest.inFlight === 0 ? latest : undefined;
      });
      expect(s.counters).toMatchObject({
        received: 7,
        delivered: 3,
        filtered: 4,
        retried: 0,
        deadLettered: 0,
      });
    } finally {
      stats.stop();
    }
  });
});

describe('the event the function sees', () => {
  let w: RunnerWorld;

  beforeAll(async () => {
    w = await RunnerWorld.start();
    const dir = w.configDir({
      // What the function received, told apart: 1e400 parses as Infinity, which JSON.stringify writes as null.
      functionSource: `async function onTrack(event, settings) {
        await fetch(settings.url + '/' + event.messageId, { method: 'POST', body: String(event.properties.big) });
      }`,
      settings: { url: w.dest.url },
      config: { dataControl: { dropProperties: ['email'], dropTraits: [], dropContext: [] } },
    });
    await w.startRunner(dir).consuming();
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await w?.dispose();
  });

  it('is parsed from the text it was published as, unless data control changed it', async () => {
    const subject = eventSubject(w.f.t, TEST_SOURCE, 'track');
    // The runner parses each event once and hands the sandbox that same text: no stringify in between.
    await w.f.js.publish(
      subject,
      '{"type":"track","event":"E","messageId":"as-sent","properties":{"big":1e400}}',
    );
    // Data control made a new object of this one (without "email"): it crosses as that object, stringified.
    await w.f.js.publish(
      subject,
      '{"type":"track","event":"E","messageId":"changed","properties":{"big":1e400,"email":"a@b.c"}}',
    );
    await waitFor('both delivered', () => w.dest.requests.length === 2);
    const bodies = Object.fromEntries(w.dest.requests.map((r) => [r.url.slice(1), r.body]));
    expect(bodies).toEqual({ 'as-sent': 'Infinity', changed: 'null' });
  });
});

describe('bounded concurrency', () => {
  it("runs events in parallel, but never more at once than the consumer's max_ack_pending", async () => {
    const nats = await NatsServer.start();
    const nc = await nats.connect();
    const dest = await Destination.start();
    const f = await fixture(nc);
    // Top-level state persists between invocations: the function reports how many of it run at once.
    const dir = writeConfigDir({
      natsUrl: nats.url,
      functionSource: `
        let running = 0;
        async function onTrack(event, settings) {
          running++;
          try {
            await new Promise((r) => setTimeout(r, 100));
            await fetch(settings.url + '/track', { method: 'POST', body: JSON.stringify({ messageId: event.messageId, running }) });
          } finally {
            running--;
          }
        }`,
      settings: { url: dest.url },
      config: { limits: { concurrency: 50 }, consumer: { maxAckPending: 4 } },
    });
    const runner = RunnerProcess.start(dir);
    try {
      await prepareTopology(f, { maxAckPending: 4 });
      await runner.consuming();
      expect(runner.log('consuming')).toMatchObject({ capacity: 4 });
      expect(
        runner.log("limits.concurrency is above the consumer's max_ack_pending; holding fewer events"),
      ).toBeDefined();
      const events = Array.from({ length: 24 }, () => track());
      await publish(f, events);
      await waitFor('all deliveries', () => dest.requests.length === events.length);
      const peak = Math.max(...dest.requests.map((r) => r.json().running as number));
      expect(peak).toBeLessThanOrEqual(4);
      expect(peak).toBeGreaterThan(1);
    } finally {
      await runner.dispose();
      await nc.close();
      await dest.close();
      await nats.dispose();
      removeDir(dir);
    }
  });
});
