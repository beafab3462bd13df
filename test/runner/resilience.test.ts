// Nothing is lost: the runner killed with SIGKILL mid-stream, nats-server restarted mid-stream, a
// destination failing for a while, and SIGTERM (finish in-flight, or hand it back after the grace period).

import type { NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SegmentEvent } from '../../api/events.js';
import { consumerName } from '../../api/jetstream.js';
import { Destination } from '../helpers/destination.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  consumerState,
  type Fixture,
  fixture,
  prepareTopology,
  publish,
  RunnerProcess,
  removeDir,
  STARTUP_TIMEOUT_MS,
  TEST_INSTANCE,
  track,
  waitFor,
  watchStats,
  writeConfigDir,
} from './harness.js';

const FUNCTION = `
async function onTrack(event, settings) {
  if (settings.delayMs) await new Promise((r) => setTimeout(r, settings.delayMs));
  const res = await fetch(settings.url + '/track', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messageId: event.messageId }),
  });
  if (res.status === 429 || res.status >= 500) throw new RetryError('destination answered ' + res.status);
}
`;

// Each test pushes thousands of events through real processes: generous bounds for a loaded CI machine.
describe('no loss', { timeout: 180_000 }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let f: Fixture;
  let dest: Destination;
  /** messageIds the destination answered 2xx for. */
  const delivered = new Set<string>();
  let failing: ((id: string) => number | undefined) | undefined;
  const runners: RunnerProcess[] = [];
  const dirs: string[] = [];

  const start = (dir: string) => {
    const r = RunnerProcess.start(dir);
    runners.push(r);
    return r;
  };
  const config = (settings: Record<string, unknown> = {}, overrides: Record<string, unknown> = {}) => {
    const dir = writeConfigDir({
      natsUrl: nats.url,
      functionSource: FUNCTION,
      settings: { url: dest.url, ...settings },
      config: overrides,
    });
    dirs.push(dir);
    return dir;
  };
  const missing = (events: readonly SegmentEvent[]) => events.filter((e) => !delivered.has(e.messageId!));
  const allDelivered = (events: readonly SegmentEvent[]) => missing(events).length === 0;

  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await nats.connect();
    f = await fixture(nc);
    dest = await Destination.start();
    dest.respond = (req) => {
      const id = req.json().messageId as string;
      const status = failing?.(id);
      if (status) return { status, body: { error: 'failing on purpose' } };
      delivered.add(id);
      return undefined;
    };
  }, STARTUP_TIMEOUT_MS);

  afterEach(async () => {
    for (const r of runners.splice(0)) await r.dispose();
    failing = undefined;
    // Each test starts from an empty consumer, so leftovers of one cannot satisfy another.
    await f.jsm.consumers.delete(f.t.eventsStream, consumerName(TEST_INSTANCE)).catch(() => {});
  });

  afterAll(async () => {
    await nc?.close();
    await dest?.close();
    await nats?.dispose();
    for (const d of dirs) removeDir(d);
  });

  it('delivers every one of 5,000 events although the runner is killed with SIGKILL twice mid-stream', async () => {
    await prepareTopology(f);
    const events = Array.from({ length: 5000 }, (_, i) => track({ i }));
    await publish(f, events);
    const dir = config();

    for (const threshold of [1000, 2500]) {
      const runner = start(dir);
      await waitFor(`${threshold} deliveries`, () => delivered.size >= threshold, 60_000, 5);
      runner.kill('SIGKILL');
      expect(await runner.exit()).toEqual({ code: null, signal: 'SIGKILL' });
      // Killed mid-stream, not after the fact.
      expect(missing(events).length).toBeGreaterThan(0);
    }
    start(dir);
    await waitFor(
      `all 5,000 deliveries (missing ${missing(events).length})`,
      () => allDelivered(events),
      120_000,
      50,
    );
    expect(missing(events)).toEqual([]);
  });

  it('loses nothing when nats-server restarts mid-stream, and resumes consuming', async () => {
    await prepareTopology(f);
    const before = Array.from({ length: 2000 }, (_, i) => track({ i }));
    await publish(f, before);
    const runner = start(config());
    await waitFor(
      'deliveries to be under way',
      () => before.filter((e) => delivered.has(e.messageId!)).length >= 300,
      60_000,
      5,
    );
    await nats.restart();
    await waitFor('the runner to reconnect', () => runner.log('reconnected to NATS'), 30_000);
    // The test's own connection reconnects on its own schedule; publish once JetStream answers it again.
    await waitFor(
      'the test connection to reconnect',
      () => f.jsm.streams.info(f.t.eventsStream),
      30_000,
      200,
    );
    const after = Array.from({ length: 500 }, (_, i) => track({ i, afterRestart: true }));
    await publish(f, after);
    await waitFor(
      `every event delivered (missing ${missing([...before, ...after]).length})`,
      () => allDelivered([...before, ...after]),
      120_000,
      50,
    );
    expect(runner.exitCode).toBeUndefined();
  });

  it('delivers everything once a destination answering 429 and 500 recovers', async () => {
    await prepareTopology(f);
    let failures = 0;
    failing = () => {
      failures++;
      return failures % 2 ? 429 : 500;
    };
    const stats = watchStats(f);
    try {
      const events = Array.from({ length: 300 }, (_, i) => track({ i }));
      await publish(f, events);
      start(config({}, { retry: { maxAttempts: 10, delaysMs: [200, 400], jitter: 0.5 } }));
      await waitFor('every event to fail at least once', () => failures >= 300, 60_000);
      failing = undefined;
      await waitFor(
        `every event delivered (missing ${missing(events).length})`,
        () => allDelivered(events),
        60_000,
      );
      const s = await waitFor('settled stats', () => {
        const latest = stats.latest();
        return latest && latest.inFlight === 0 && latest.counters.delivered >= 300 ? latest : undefined;
      });
      expect(s.counters.deadLettered).toBe(0);
      expect(s.counters.retried).toBeGreaterThanOrEqual(300);
    } finally {
      stats.stop();
    }
  });

  it('keeps an invocation longer than the ack wait alive with working(), so it is not redelivered', async () => {
    await prepareTopology(f, { ackWaitMs: 1000 });
    const stats = watchStats(f);
    try {
      const event = track();
      await publish(f, [event]);
      start(config({ delayMs: 2500 }, { consumer: { ackWaitMs: 1000 } }));
      await waitFor('the delivery', () => delivered.has(event.messageId!), 30_000);
      const s = await waitFor('settled stats', () => {
        const latest = stats.latest();
        return latest && latest.counters.delivered === 1 && latest.inFlight === 0 ? latest : undefined;
      });
      // Redelivered after 1 s without working(), the event would have been received (and sent) twice.
      expect(s.counters.received).toBe(1);
      expect(dest.requests.filter((r) => r.json().messageId === event.messageId)).toHaveLength(1);
    } finally {
      stats.stop();
    }
  });

  it('on SIGTERM stops pulling, finishes in-flight events, publishes final stats and exits 0', async () => {
    await prepareTopology(f);
    const stats = watchStats(f);
    try {
      const events = Array.from({ length: 200 }, (_, i) => track({ i }));
      await publish(f, events);
      const dir = config({ delayMs: 200 }, { limits: { concurrency: 20 } });
      const runner = start(dir);
      await waitFor(
        () => `deliveries to be under way\n${runner.output}`,
        () => events.some((e) => delivered.has(e.messageId!)),
        60_000,
        5,
      );
      runner.kill('SIGTERM');
      expect(await runner.exit()).toEqual({ code: 0, signal: null });
      const stopped = runner.log('stopped');
      expect(stopped).toMatchObject({ released: 0 });
      expect(missing(events).length).toBeGreaterThan(0);
      // The final stats: nothing held, every received event settled.
      const final = await waitFor(
        () => `the final stats (latest: ${JSON.stringify(stats.latest())})\n${runner.output}`,
        () => {
          const s = stats.latest();
          return s && s.inFlight === 0 && s.counters.received === stopped!.counters.received ? s : undefined;
        },
      );
      expect(final.counters.received).toBe(final.counters.delivered);
      const state = await consumerState(f, consumerName(TEST_INSTANCE));
      expect(state.ackPending).toBe(0);

      start(dir);
      await waitFor(
        `the rest delivered after a restart (missing ${missing(events).length})`,
        () => allDelivered(events),
        60_000,
      );
    } finally {
      stats.stop();
    }
  });

  it('on SIGTERM hands events still running after the grace period back to NATS', async () => {
    await prepareTopology(f);
    const events = Array.from({ length: 10 }, (_, i) => track({ i }));
    await publish(f, events);
    // Still running when both the grace period and the last pull (up to 5 s) are over.
    const dir = config({ delayMs: 15_000 }, { shutdown: { gracePeriodMs: 300 } });
    const runner = start(dir);
    await runner.consuming();
    await waitFor(
      'events to be in flight',
      async () => (await consumerState(f, consumerName(TEST_INSTANCE))).ackPending === 10,
    );
    runner.kill('SIGTERM');
    expect(await runner.exit()).toEqual({ code: 0, signal: null });
    expect(runner.log('stopped')).toMatchObject({ released: 10 });
    // Handed back, not waiting for ack_wait: another runner picks them up at once.
    const next = start(config());
    await next.consuming();
    await waitFor('all delivered by the next runner', () => allDelivered(events), 30_000);
  });
});
