// The delivery tracker against the real things: `dfn runner` processes publishing stats to a real nats-server,
// delivering to a destination on 127.0.0.1 that fails on command. Counts add up over replicas and restarts
// (SIGTERM, SIGKILL) and across a tracker restart, never backwards nor twice; failures move retrying, failed,
// lastError and Healthy; the backlog follows the consumer; unchanged stats change nothing; lies are bounded.

import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deleteInstanceConsumer,
  type InstanceRef,
  type RunnerStats,
  retrySchedulesWildcard,
  runnerCounters,
  statsSubject,
} from '../../api/jetstream.js';
import { silentProcessLogger } from '../../lib/telemetry.js';
import {
  DeliveryTracker,
  type DeliveryTrackerOptions,
  type InstanceDelivery,
} from '../../operator/delivery/index.js';
import type { Destination } from '../helpers/destination.js';
import {
  type Fixture,
  prepareTopology,
  publish,
  type RunnerProcess,
  RunnerWorld,
  STARTUP_TIMEOUT_MS,
  track,
  waitFor,
} from '../runner/harness.js';

const NS = 'shop';
const EMPTY: InstanceDelivery = { delivered: 0, retrying: 0, failed: 0, deadLettered: 0, filtered: 0 };

// Posts to <url>/<instance>; the destination answers per instance. `reject` events fail for good.
const FUNCTION = `
async function onTrack(event, settings) {
  if (event.properties && event.properties.reject) throw new ValidationError('rejected: ' + event.messageId);
  const res = await fetch(settings.url + '/' + settings.path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messageId: event.messageId }),
  });
  if (res.status >= 500) throw new RetryError('destination answered ' + res.status);
}
`;

/** A tracker as the operator runs it, recording each change it reports and the delivery at that moment. */
class TrackerUnderTest {
  readonly changes: Array<{ key: InstanceRef; delivery: InstanceDelivery | undefined }> = [];
  readonly registry = new Registry();
  readonly tracker: DeliveryTracker;

  constructor(f: Fixture, options: Partial<DeliveryTrackerOptions> = {}) {
    this.tracker = new DeliveryTracker({
      nc: f.nc,
      jsm: f.jsm,
      topology: f.t,
      log: silentProcessLogger(),
      pollIntervalMs: 200,
      debounceMs: 50,
      onChange: (key) => this.changes.push({ key, delivery: this.tracker.current(key) }),
      ...options,
    });
    this.tracker.registerMetrics(this.registry);
  }

  static async start(f: Fixture, options: Partial<DeliveryTrackerOptions> = {}): Promise<TrackerUnderTest> {
    const t = new TrackerUnderTest(f, options);
    await t.tracker.start();
    return t;
  }

  changesOf(key: InstanceRef) {
    return this.changes.filter((c) => c.key.namespace === key.namespace && c.key.name === key.name);
  }

  async until(
    what: string,
    key: InstanceRef,
    check: (d: InstanceDelivery) => boolean,
    timeoutMs = 60_000,
  ): Promise<InstanceDelivery> {
    return waitFor(
      () => `${what} (now ${JSON.stringify(this.tracker.current(key))})`,
      () => {
        const d = this.tracker.current(key);
        return d && check(d) ? d : undefined;
      },
      timeoutMs,
    );
  }

  async metric(name: string, labels: Record<string, string>): Promise<number | undefined> {
    const m = await this.registry.getSingleMetric(name)?.get();
    const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
    return v?.value;
  }
}

/** Every runner stats message of an instance, as the test itself hears them: the truth the tracker must match. */
function statsLog(f: Fixture, instance: InstanceRef) {
  const byProcess = new Map<string, RunnerStats>();
  let heard = 0;
  const sub = f.nc.subscribe(statsSubject(f.t, instance), {
    callback: (_err, m) => {
      const s = JSON.parse(new TextDecoder().decode(m.data)) as RunnerStats;
      byProcess.set(`${s.replica} ${s.startedAt}`, s);
      heard++;
    },
  });
  return {
    /** Messages heard since this log began. */
    heard: () => heard,
    processes: () => [...byProcess.values()],
    /** The sum of what each process last reported. */
    sum: (pick: (s: RunnerStats) => number) => [...byProcess.values()].reduce((n, s) => n + pick(s), 0),
    stop: () => sub.unsubscribe(),
  };
}

function nonDecreasing(values: number[]): boolean {
  return values.every((v, i) => i === 0 || v >= values[i - 1]!);
}

describe('delivery tracker', { timeout: 240_000 }, () => {
  let w: RunnerWorld;
  let f: Fixture;
  let dest: Destination;
  /** Per instance: answers of the destination (default 200), and the ids it accepted. */
  const failing = new Set<string>();
  const delayMs = new Map<string, number>();
  const accepted = new Map<string, string[]>();

  beforeAll(async () => {
    w = await RunnerWorld.start();
    ({ f, dest } = w);
    dest.respond = async (req) => {
      const path = req.url.slice(1);
      const wait = delayMs.get(path);
      if (wait) await new Promise((r) => setTimeout(r, wait));
      if (failing.has(path)) return { status: 503 };
      accepted.set(path, [...(accepted.get(path) ?? []), req.json().messageId]);
      return undefined;
    };
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await w?.dispose();
  });

  /** An instance of its own (own source, consumer and destination path), its topology ready. */
  async function instance(name: string): Promise<InstanceRef> {
    const ref = { namespace: NS, name };
    await prepareTopology(f, { instance: ref, source: name });
    return ref;
  }

  function runner(ref: InstanceRef, replica: string, config: Record<string, unknown> = {}): RunnerProcess {
    const dir = w.configDir({
      instance: ref,
      source: ref.name,
      functionSource: FUNCTION,
      settings: { url: dest.url, path: ref.name },
      config,
    });
    return w.startRunner(dir, ['--replica', replica]);
  }

  const events = (n: number, properties: Record<string, unknown> = {}) =>
    Array.from({ length: n }, (_, i) => track({ i, ...properties }));

  it('counts from two replicas add up: each counted once, the total their sum', async () => {
    const ref = await instance('pair');
    const t = await TrackerUnderTest.start(f);
    const log = statsLog(f, ref);
    try {
      t.tracker.seed(ref, EMPTY);
      delayMs.set('pair', 5);
      const config = { limits: { concurrency: 4 } };
      const [a, b] = [runner(ref, 'pair-a', config), runner(ref, 'pair-b', config)];
      await Promise.all([a.consuming(), b.consuming()]);
      await publish(f, events(300), 'pair');
      const d = await t.until('300 delivered', ref, (x) => x.delivered === 300);
      await waitFor(
        'both replicas reporting their last counts',
        () => log.sum((s) => s.counters.delivered) === 300,
      );
      const perReplica = log.processes().map((s) => s.counters.delivered);
      expect(perReplica).toHaveLength(2);
      expect(perReplica.every((n) => n > 0)).toBe(true);
      expect(d).toMatchObject({ delivered: 300, failed: 0, retrying: 0, deadLettered: 0 });
      expect(accepted.get('pair')).toHaveLength(300);
    } finally {
      log.stop();
      await t.tracker.stop();
    }
  });

  it('a runner restarted by SIGTERM or SIGKILL never moves a count back nor counts an event twice', async () => {
    const ref = await instance('restart');
    const t = await TrackerUnderTest.start(f);
    const log = statsLog(f, ref);
    try {
      t.tracker.seed(ref, EMPTY);
      let r = runner(ref, 'restart-0');
      await r.consuming();
      await publish(f, events(50), 'restart');
      await t.until('50 delivered', ref, (x) => x.delivered === 50);

      r.kill('SIGTERM'); // final stats flushed; the same pod name comes back with a new process
      expect((await r.exit()).code).toBe(0);
      r = runner(ref, 'restart-0');
      await r.consuming();
      await publish(f, events(50), 'restart');
      await t.until('100 delivered after the SIGTERM', ref, (x) => x.delivered === 100);

      r.kill('SIGKILL');
      await r.exit();
      r = runner(ref, 'restart-0');
      await r.consuming();
      await publish(f, events(50), 'restart');
      await t.until('150 delivered after the SIGKILL', ref, (x) => x.delivered === 150);

      // Mid-flow: killed with events in flight. What it had not reported is lost to the count (never more
      // than it did); what comes back is delivered again by the next process and counted by it, once.
      delayMs.set('restart', 20);
      await publish(f, events(100), 'restart');
      await waitFor('some of the 100 delivered', () => (accepted.get('restart')?.length ?? 0) > 170);
      r.kill('SIGKILL');
      await r.exit();
      r = runner(ref, 'restart-0');
      await r.consuming();
      await waitFor(
        'every event accepted by the destination',
        () => new Set(accepted.get('restart')).size === 250,
      );
      await waitFor('the new process reporting all it did', async () => {
        const reported = log.sum((s) => s.counters.delivered);
        return t.tracker.current(ref)?.delivered === reported;
      });
      const d = t.tracker.current(ref)!;
      // Exactly what the processes reported (each once), never more than the destination accepted.
      expect(d.delivered).toBe(log.sum((s) => s.counters.delivered));
      expect(d.delivered).toBeLessThanOrEqual(accepted.get('restart')!.length);
      expect(d.delivered).toBeGreaterThanOrEqual(150);
      expect(log.processes()).toHaveLength(4);
      expect(nonDecreasing(t.changesOf(ref).map((c) => c.delivery!.delivered))).toBe(true);
    } finally {
      log.stop();
      delayMs.delete('restart');
      await t.tracker.stop();
    }
  });

  it('a tracker restarted from status continues: it starts at the status and adds only what follows', async () => {
    const ref = await instance('resume');
    const first = await TrackerUnderTest.start(f);
    let second: TrackerUnderTest | undefined;
    try {
      first.tracker.seed(ref, EMPTY);
      const r = runner(ref, 'resume-0');
      await r.consuming();
      await publish(f, events(40), 'resume');
      const status = await first.until('40 delivered', ref, (x) => x.delivered === 40 && x.backlog === 0);
      await first.tracker.stop();

      // While no tracker runs, the runner goes on: these are counted by the runner, not by any status.
      await publish(f, events(20), 'resume');
      await waitFor('60 accepted', () => accepted.get('resume')?.length === 60);

      second = await TrackerUnderTest.start(f);
      second.tracker.seed(ref, status);
      expect(second.tracker.current(ref)).toEqual(status);
      // The runner's stats (60 delivered so far) keep arriving: none of it is counted again.
      const heard = statsLog(f, ref);
      // Heard after the new tracker subscribed, so the tracker heard them too.
      await waitFor('the runner reporting 60, three times since', () => heard.heard() >= 3);
      expect(heard.processes()[0]!.counters.delivered).toBe(60);
      heard.stop();
      expect(second.tracker.current(ref)!.delivered).toBe(40);
      await publish(f, events(30), 'resume');
      await second.until('40 + 30', ref, (x) => x.delivered === 70);
      // The 20 delivered while no tracker listened are missing (documented), never double: 70 ≤ 90.
      expect(accepted.get('resume')).toHaveLength(90);
    } finally {
      await first.tracker.stop();
      await second?.tracker.stop();
    }
  });

  it('a failing destination moves retrying, failed and lastError and turns Healthy False; recovery turns it True', async () => {
    const ref = await instance('flaky');
    const t = await TrackerUnderTest.start(f, {
      health: { windowMs: 4000, minAttempts: 10, unhealthyRatio: 0.5, healthyRatio: 0.25 },
    });
    try {
      t.tracker.seed(ref, EMPTY);
      failing.add('flaky');
      // Two attempts, 3 s apart: the first failure of each waits in its schedule, the second dead-letters it.
      const r = runner(ref, 'flaky-0', { retry: { maxAttempts: 2, delaysMs: [3000], jitter: 0 } });
      await r.consuming();
      await publish(f, [...events(30), ...events(1, { reject: true })], 'flaky');

      const waiting = await t.until(
        '30 retries waiting, Healthy False',
        ref,
        (x) => x.retrying === 30 && x.healthy?.status === false,
      );
      // retrying is what JetStream holds: one schedule per waiting event.
      const info = await f.jsm.streams.info(f.t.retryStream, {
        subjects_filter: retrySchedulesWildcard(f.t, ref),
      });
      expect(Object.keys(info.state.subjects ?? {}).length).toBe(30);
      expect(waiting.healthy).toMatchObject({ reason: 'DeliveriesFailing' });
      expect(waiting.failed).toBe(1); // the rejected one: discarded at once
      expect(['Retry', 'MessageRejected']).toContain(waiting.lastError?.type);
      expect(
        await t.metric('dfn_operator_instance_retrying', { namespace: NS, function_instance: 'flaky' }),
      ).toBe(30);

      const exhausted = await t.until(
        '30 dead-lettered',
        ref,
        (x) => x.deadLettered === 30 && x.retrying === 0,
      );
      expect(exhausted).toMatchObject({ failed: 31, delivered: 0 });
      expect(exhausted.lastError).toMatchObject({ type: 'Retry', message: 'destination answered 503' });
      expect(Date.parse(exhausted.lastError!.time)).toBeLessThanOrEqual(Date.now());

      // Traffic goes on and succeeds: the failures leave the window, successes fill it.
      failing.delete('flaky');
      const recovered = await waitFor(
        () => `Healthy True again (now ${JSON.stringify(t.tracker.current(ref))})`,
        async () => {
          await publish(f, events(10), 'flaky');
          await new Promise((r) => setTimeout(r, 300));
          const d = t.tracker.current(ref);
          return d?.healthy?.status === true ? d : undefined;
        },
        60_000,
      );
      expect(recovered).toMatchObject({
        failed: 31,
        deadLettered: 30,
        healthy: { status: true, reason: 'DeliveriesSucceeding' },
      });
      expect(recovered.delivered).toBeGreaterThanOrEqual(10);
      const verdicts = t.changesOf(ref).map((c) => c.delivery?.healthy?.status);
      expect(verdicts.filter((v, i) => v !== undefined && v !== verdicts[i - 1])).toEqual([false, true]);
    } finally {
      failing.delete('flaky');
      await t.tracker.stop();
    }
  });

  it('unchanged stats (every 200 ms here) report no change and return the very same delivery', async () => {
    const ref = await instance('idle');
    const t = await TrackerUnderTest.start(f);
    try {
      t.tracker.seed(ref, EMPTY);
      const r = runner(ref, 'idle-0');
      await r.consuming();
      await publish(f, events(10), 'idle');
      await t.until('10 delivered', ref, (x) => x.delivered === 10 && x.backlog === 0);
      // Let the last change settle (debounce), then watch: runner stats and polls go on, nothing changes.
      await waitFor(
        'the change handler caught up',
        () => t.changesOf(ref).at(-1)?.delivery?.delivered === 10,
      );
      const before = t.tracker.current(ref);
      const changes = t.changesOf(ref).length;
      const accepted = await t.metric('dfn_operator_runner_stats_messages_total', { result: 'accepted' });
      await new Promise((r) => setTimeout(r, 3000)); // the observation window itself, not a wait for a state
      expect(
        await t.metric('dfn_operator_runner_stats_messages_total', { result: 'accepted' }),
      ).toBeGreaterThan(accepted! + 5);
      expect(t.changesOf(ref)).toHaveLength(changes);
      expect(t.tracker.current(ref)).toBe(before);
    } finally {
      await t.tracker.stop();
    }
  });

  it("the backlog is the consumer's pending count, in status and as a gauge; gone with the instance", async () => {
    const ref = await instance('backlog');
    const t = await TrackerUnderTest.start(f);
    try {
      t.tracker.seed(ref, EMPTY);
      await publish(f, events(25), 'backlog');
      await t.until('backlog 25', ref, (x) => x.backlog === 25);
      const labels = { namespace: NS, function_instance: 'backlog' };
      expect(await t.metric('dfn_operator_instance_backlog', labels)).toBe(25);
      const r = runner(ref, 'backlog-0');
      await r.consuming();
      await t.until('drained', ref, (x) => x.backlog === 0 && x.delivered === 25);

      r.kill('SIGTERM');
      await r.exit();
      await deleteInstanceConsumer(f.jsm, f.t, ref);
      await t.until('no consumer, no backlog', ref, (x) => x.backlog === undefined);
      const retryConsumers = [];
      for await (const c of f.jsm.consumers.list(f.t.retryStream)) retryConsumers.push(c.name);
      expect(retryConsumers).not.toContain('fi_shop__backlog');

      t.tracker.forget(ref);
      expect(t.tracker.current(ref)).toBeUndefined();
      expect(await t.metric('dfn_operator_instance_backlog', labels)).toBeUndefined();
    } finally {
      await t.tracker.stop();
    }
  });

  it('a nats-server restart loses no count and adds none: polls fail meanwhile, values are kept, counting resumes', async () => {
    const ref = await instance('outage');
    const t = await TrackerUnderTest.start(f);
    try {
      t.tracker.seed(ref, EMPTY);
      const r = runner(ref, 'outage-0');
      await r.consuming();
      await publish(f, events(20), 'outage');
      await t.until('20 delivered', ref, (x) => x.delivered === 20 && x.backlog === 0);
      await w.nats.stop();
      await waitFor(
        'a poll failing',
        async () => ((await t.metric('dfn_operator_delivery_poll_errors_total', {})) ?? 0) > 0,
      );
      expect(t.tracker.current(ref)).toMatchObject({ delivered: 20, backlog: 0 });
      await w.nats.restart();
      await waitFor('the runner consuming again', () => r.log('reconnected to NATS'), 60_000);
      await waitFor('the test connection back', () => !f.nc.isClosed() && f.nc.info !== undefined);
      await publish(f, events(20), 'outage');
      await t.until('40 delivered', ref, (x) => x.delivered === 40 && x.backlog === 0);
      expect(nonDecreasing(t.changesOf(ref).map((c) => c.delivery!.delivered))).toBe(true);
    } finally {
      await t.tracker.stop();
    }
  });

  it('hostile stats cannot crash it, move a count back, or make one explode; what it holds stays bounded', async () => {
    const ref = await instance('hostile');
    const t = await TrackerUnderTest.start(f, {
      limits: {
        eventsPerSecondPerProcess: 1000,
        unseededInstances: 20,
        processesPerInstance: 8,
        retiredProcesses: 50,
      },
    });
    try {
      t.tracker.seed(ref, EMPTY);
      const r = runner(ref, 'hostile-0');
      await r.consuming();
      await publish(f, events(20), 'hostile');
      await t.until('20 delivered', ref, (x) => x.delivered === 20);

      const subject = statsSubject(f.t, ref);
      const now = () => new Date().toISOString();
      const counters = (delivered: number) =>
        runnerCounters({ received: delivered, delivered, invocations: delivered, executionMs: 1 });
      const real = () => t.tracker.current(ref)!;
      const stats = (over: Record<string, unknown>) =>
        JSON.stringify({
          instance: ref,
          replica: 'liar',
          revision: 'x',
          startedAt: now(),
          at: now(),
          inFlight: 0,
          counters: counters(1),
          ...over,
        });
      const garbage: Array<string | Uint8Array> = [
        'not json',
        '{"instance":',
        'null',
        '[]',
        '42',
        new Uint8Array(64 * 1024).fill(0x7b),
        stats({ counters: { ...counters(1), delivered: -5 } }),
        stats({ counters: { ...counters(1), delivered: 1e300 } }),
        stats({ counters: { ...counters(1), delivered: '10' } }),
        stats({ counters: { ...counters(1), delivered: 1.5 } }),
        stats({ counters: { ...counters(1), discarded: { BadRequest: -1 } } }),
        stats({ startedAt: 'yesterday' }),
        stats({ instance: { namespace: NS, name: 'someone-else' } }), // names another instance than its subject
        stats({ instance: { namespace: 'a.b', name: 'c' } }),
        stats({ replica: 'x'.repeat(10_000) }),
        `{"__proto__":{"polluted":true},${stats({}).slice(1)}`,
      ];
      for (const g of garbage) f.nc.publish(subject, g);
      // Lies that parse: a process claiming 10^15 deliveries; the real process's identity with fewer.
      f.nc.publish(subject, stats({ replica: 'liar', counters: counters(1e15) }));
      // A flood: 500 invented replicas of this instance, and 500 invented instances in other namespaces.
      for (let i = 0; i < 500; i++) {
        f.nc.publish(subject, stats({ replica: `fake-${i}`, counters: counters(0) }));
        const other = { namespace: `ns${i}`, name: 'x' };
        f.nc.publish(statsSubject(f.t, other), stats({ instance: other, counters: counters(5) }));
      }
      await f.nc.flush();
      await waitFor('the flood heard', async () => {
        const n = await t.metric('dfn_operator_runner_stats_messages_total', { result: 'accepted' });
        return (n ?? 0) >= 1000;
      });

      const afterLies = real();
      // The liar added at most what a process can do in its claimed lifetime (≤ 1000/s here, plus a second).
      expect(afterLies.delivered).toBeGreaterThanOrEqual(20);
      expect(afterLies.delivered).toBeLessThanOrEqual(20 + 5000);
      for (const reason of ['not_json', 'oversized', 'invalid', 'subject_mismatch']) {
        expect(
          await t.metric('dfn_operator_runner_stats_messages_total', { result: reason }),
        ).toBeGreaterThan(0);
      }
      expect(
        await t.metric('dfn_operator_delivery_tracked', { kind: 'unseeded_instances' }),
      ).toBeLessThanOrEqual(20);
      expect(await t.metric('dfn_operator_delivery_tracked', { kind: 'processes' })).toBeLessThanOrEqual(
        8 + 20 * 8,
      );
      expect(
        await t.metric('dfn_operator_delivery_tracked', { kind: 'retired_processes' }),
      ).toBeLessThanOrEqual(50);

      // The real runner's identity, with counters lower than it reported: nothing goes back.
      const latest = statsLog(f, ref);
      await waitFor('a real stats message', () => latest.processes().find((s) => s.replica === 'hostile-0'));
      const genuine = latest.processes().find((s) => s.replica === 'hostile-0')!;
      latest.stop();
      f.nc.publish(subject, JSON.stringify({ ...genuine, counters: counters(0), at: now() }));
      await f.nc.flush();

      // Still counting the real runner exactly, on top of whatever the lies added.
      const base = real().delivered;
      expect(base).toBeGreaterThanOrEqual(afterLies.delivered);
      await publish(f, events(15), 'hostile');
      await t.until('15 more counted', ref, (x) => x.delivered === base + 15);
      expect(nonDecreasing(t.changesOf(ref).map((c) => c.delivery!.delivered))).toBe(true);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    } finally {
      await t.tracker.stop();
    }
  });
});
