// The accounts of one instance as specifications, on a clock the test moves: which counts a process adds,
// when a process is new, what never goes backwards, what bounds a lie, and when Healthy flips. The same rules
// run against real runners and nats-server in delivery-tracker.test.ts.

import { describe, expect, it } from 'vitest';
import { DEFAULT_HEALTH_POLICY, type HealthPolicy, HealthReasons } from '../../api/delivery-status.js';
import { FunctionInstanceStatusSchema } from '../../api/function-instance.js';
import { type RunnerCounters, type RunnerStatsMessage, runnerCounters } from '../../api/jetstream.js';
import { BoundedMap } from '../../operator/delivery/bounded-map.js';
import {
  DEFAULT_TRACKER_LIMITS,
  type InstanceDelivery,
  type TrackerLimits,
} from '../../operator/delivery/index.js';
import {
  FIRST_SIGHT_SLACK_MS,
  FRESH_PROCESS_MS,
  InstanceLedger,
  type Now,
  type ProcessState,
} from '../../operator/delivery/ledger.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const KEY = { namespace: 'shop', name: 'orders' };

/** A clock: listening since `listeningFrom` (ms after T0), now at `at` ms after T0. */
function clock(at: number, listeningFrom = 0): Now {
  return { mono: at, wall: T0 + at, listeningMs: at - listeningFrom };
}

const counters = runnerCounters;

/** A stats message of process `replica` started `startedAt` ms after T0, sent `at` ms after T0. */
function msg(
  replica: string,
  startedAt: number,
  at: number,
  c: Partial<RunnerCounters> = {},
  extra: Partial<RunnerStatsMessage> = {},
): RunnerStatsMessage {
  return {
    instance: KEY,
    replica,
    revision: 'r1',
    startedAt: new Date(T0 + startedAt).toISOString(),
    at: new Date(T0 + at).toISOString(),
    inFlight: 0,
    counters: counters(c),
    ...extra,
  };
}

function ledger(
  policy: Partial<HealthPolicy> = {},
  limits: Partial<TrackerLimits> = {},
  retired = new BoundedMap<string, ProcessState>(1000),
) {
  return new InstanceLedger(
    KEY,
    { ...DEFAULT_HEALTH_POLICY, ...policy },
    { ...DEFAULT_TRACKER_LIMITS, ...limits },
    retired,
  );
}

const EMPTY: InstanceDelivery = { delivered: 0, retrying: 0, failed: 0, deadLettered: 0, filtered: 0 };

describe('counts per process', () => {
  it('a process started while the tracker listened counts from zero; one started before counts from first sight', () => {
    const l = ledger();
    l.seed(EMPTY);
    // Listening since 0; "early" started long before (an operator restart), "late" at 60 s.
    l.observe(msg('early', -3_600_000, 60_000, { delivered: 500 }), clock(60_000));
    l.observe(msg('late', 60_000, 60_050, { delivered: 3 }), clock(60_050));
    expect(l.snapshot.delivered).toBe(3);
    l.observe(msg('early', -3_600_000, 65_000, { delivered: 510 }), clock(65_000));
    l.observe(msg('late', 60_000, 65_050, { delivered: 9 }), clock(65_050));
    expect(l.snapshot.delivered).toBe(10 + 9);
  });

  it('a process heard within the slack of the tracker starting is taken as older (may undercount, never twice)', () => {
    const l = ledger();
    l.seed({ ...EMPTY, delivered: 100 });
    const at = FIRST_SIGHT_SLACK_MS - 1;
    l.observe(msg('r', 0, at, { delivered: 7 }), clock(at));
    expect(l.snapshot.delivered).toBe(100);
  });

  it('a process heard first when already old counts from then, even if it started after the tracker', () => {
    // E.g. a runner whose stats did not reach the tracker for minutes: its counts may have been counted
    // before its memory was dropped, so only what it adds from now on counts.
    const l = ledger();
    l.seed(EMPTY);
    l.observe(msg('quiet', 10_000, 10_000 + FRESH_PROCESS_MS + 1, { delivered: 70 }), clock(80_000));
    expect(l.snapshot.delivered).toBe(0);
    l.observe(msg('quiet', 10_000, 85_000, { delivered: 72 }), clock(85_000));
    expect(l.snapshot.delivered).toBe(2);
  });

  it('a process silent for long leaves the live table and resumes where it was when heard again', () => {
    const retired = new BoundedMap<string, ProcessState>(100);
    const l = ledger({}, {}, retired);
    l.seed(EMPTY);
    l.observe(msg('r', 10_000, 11_000, { delivered: 5 }), clock(11_000));
    l.retireSilent(11_000 + 600_000, 600_000);
    expect(l.processCount).toBe(0);
    expect(retired.size).toBe(1);
    l.observe(msg('r', 10_000, 700_000, { delivered: 9 }), clock(700_000));
    expect(l.snapshot.delivered).toBe(9);
  });

  it('a new process of the same replica (restart) starts again from zero; the old one keeps what it added', () => {
    const l = ledger();
    l.seed({ ...EMPTY, delivered: 40 });
    l.observe(msg('pod-a', 10_000, 15_000, { delivered: 5, filtered: 1 }), clock(15_000));
    l.observe(msg('pod-a', 10_000, 20_000, { delivered: 8, filtered: 2 }), clock(20_000));
    // Restarted (crash, SIGKILL): counters again at zero, a new startedAt.
    l.observe(msg('pod-a', 30_000, 30_100, { delivered: 0 }), clock(30_100));
    expect(l.snapshot.delivered).toBe(48);
    l.observe(msg('pod-a', 30_000, 35_000, { delivered: 4, filtered: 1 }), clock(35_000));
    expect(l.snapshot).toMatchObject({ delivered: 52, filtered: 3 });
  });

  it('status fields are the api/ definitions: failed = discarded (any type) + dead-lettered', () => {
    const l = ledger();
    l.seed(EMPTY);
    l.observe(
      msg('r', 10_000, 12_000, {
        delivered: 10,
        filtered: 2,
        retried: 7,
        discarded: { BadRequest: 2, MessageRejected: 1, SomeFutureType: 1 } as RunnerCounters['discarded'],
        deadLettered: 3,
        deadLetteredFromAdvisory: 1,
      }),
      clock(12_000),
    );
    expect(l.snapshot).toMatchObject({ delivered: 10, retrying: 0, failed: 8, deadLettered: 4, filtered: 2 });
  });

  it('counts never go backwards: a lower value (a lie, or a message out of order) adds nothing', () => {
    const l = ledger();
    l.seed(EMPTY);
    l.observe(msg('r', 10_000, 12_000, { delivered: 50 }), clock(12_000));
    l.observe(msg('r', 10_000, 13_000, { delivered: 1 }), clock(13_000));
    expect(l.snapshot.delivered).toBe(50);
    l.observe(msg('r', 10_000, 14_000, { delivered: 52 }), clock(14_000));
    expect(l.snapshot.delivered).toBe(52);
  });

  it('no message counts more than a process could have done since its previous one', () => {
    const l = ledger({}, { eventsPerSecondPerProcess: 1000 });
    l.seed(EMPTY);
    // A made-up process claiming 10^15 deliveries one second after it started.
    l.observe(msg('liar', 10_000, 11_000, { delivered: 1e15 }), clock(11_000));
    expect(l.snapshot.delivered).toBeLessThanOrEqual(2000);
    // Five seconds on, it may add at most another 6 s worth.
    l.observe(msg('liar', 10_000, 16_000, { delivered: 2e15 }), clock(16_000));
    expect(l.snapshot.delivered).toBeLessThanOrEqual(2000 + 6000);
    expect(() => FunctionInstanceStatusSchema.parse(statusOf(l.snapshot))).not.toThrow();
  });

  it('a process retired for room resumes where it was when heard again, neither twice nor from zero', () => {
    const retired = new BoundedMap<string, ProcessState>(100);
    const l = ledger({}, { processesPerInstance: 2 }, retired);
    l.seed(EMPTY);
    l.observe(msg('a', 10_000, 11_000, { delivered: 5 }), clock(11_000));
    l.observe(msg('b', 10_000, 11_000, { delivered: 1 }), clock(11_000));
    l.observe(msg('c', 10_000, 11_000, { delivered: 1 }), clock(11_000)); // retires a
    expect(retired.size).toBe(1);
    l.observe(msg('a', 10_000, 12_000, { delivered: 6 }), clock(12_000));
    expect(l.snapshot.delivered).toBe(5 + 1 + 1 + 1);
  });
});

describe('seed (an operator restart continues from status)', () => {
  it('starts from the persisted status and shows it unchanged until something happens', () => {
    const l = ledger();
    const status: InstanceDelivery = {
      delivered: 1000,
      retrying: 4,
      failed: 12,
      deadLettered: 3,
      filtered: 9,
      lastError: { type: 'Retry', message: '503', time: '2026-12-01T09:00:00.000Z' },
      backlog: 17,
      healthy: { status: true, reason: HealthReasons.DeliveriesSucceeding, message: 'as written' },
    };
    l.seed(status);
    expect(l.snapshot).toEqual(status);
    // A runner running since before the restart: what it did so far is in the status already.
    expect(l.observe(msg('r', -600_000, 5000, { delivered: 900 }), clock(5000))).toBe(false);
    l.observe(msg('r', -600_000, 10_000, { delivered: 905 }), clock(10_000));
    expect(l.snapshot.delivered).toBe(1005);
  });

  it('seeded again (leading again), the stored status is a floor: never added twice, never written lower', () => {
    const l = ledger();
    l.seed({ ...EMPTY, delivered: 100, failed: 2 });
    l.observe(msg('r', 10_000, 11_000, { delivered: 10 }), clock(11_000));
    // While this operator stood by, another led and wrote from the same runners' stats: no more than we have.
    expect(l.catchUp({ ...EMPTY, delivered: 108, failed: 2 })).toBe(false);
    expect(l.snapshot).toMatchObject({ delivered: 110, failed: 2 });
    // It had heard more (our subscription missed some): its counts are the floor.
    const time = '2026-12-01T10:00:20.000Z';
    expect(
      l.catchUp({ ...EMPTY, delivered: 130, failed: 5, lastError: { type: 'Timeout', message: 'x', time } }),
    ).toBe(true);
    expect(l.snapshot).toMatchObject({ delivered: 130, failed: 5, lastError: { type: 'Timeout', time } });
    l.observe(msg('r', 10_000, 21_000, { delivered: 12 }), clock(21_000));
    expect(l.snapshot.delivered).toBe(132);
  });

  it('keeps counts a status could not hold out of it: negative, fractional or huge seeds are clamped', () => {
    const l = ledger();
    l.seed({ delivered: -5, retrying: 2.7, failed: Number.NaN, deadLettered: 1e300, filtered: 3 });
    expect(l.snapshot).toEqual({
      delivered: 0,
      retrying: 2,
      failed: 0,
      deadLettered: Number.MAX_SAFE_INTEGER,
      filtered: 3,
    });
  });
});

describe('lastError', () => {
  const err = (type: string, message: string, time: string) => ({
    lastError: { type, message, time } as any,
  });

  it('is the most recent failure over all processes, its time no later than now', () => {
    const l = ledger();
    l.seed({ ...EMPTY, lastError: { type: 'Timeout', message: 'old', time: '2026-12-01T09:59:00.000Z' } });
    l.observe(msg('a', 1000, 5000, {}, err('Retry', 'a fails', '2026-12-01T10:00:04.000Z')), clock(5000));
    l.observe(
      msg('b', 1000, 5000, {}, err('BadRequest', 'b older', '2026-12-01T10:00:02.000Z')),
      clock(5000),
    );
    expect(l.snapshot.lastError).toEqual({
      type: 'Retry',
      message: 'a fails',
      time: '2026-12-01T10:00:04.000Z',
    });
    // A clock years ahead cannot pin its error: it is taken as now, and a later real error replaces it.
    l.observe(msg('c', 1000, 6000, {}, err('Timeout', 'from 2099', '2099-01-01T00:00:00.000Z')), clock(6000));
    expect(l.snapshot.lastError?.time).toBe(new Date(T0 + 6000).toISOString());
    l.observe(msg('a', 1000, 8000, {}, err('Retry', 'later', '2026-12-01T10:00:07.000Z')), clock(8000));
    expect(l.snapshot.lastError?.message).toBe('later');
  });

  it('an unchanged lastError changes nothing, and the same object is returned', () => {
    const l = ledger();
    l.seed(EMPTY);
    const e = err('Retry', 'x', '2026-12-01T10:00:04.000Z');
    expect(l.observe(msg('a', 1000, 5000, { retried: 1 }, e), clock(5000))).toBe(true);
    const before = l.snapshot;
    for (let t = 10_000; t < 70_000; t += 5000) {
      expect(l.observe(msg('a', 1000, t, { retried: 1 }, e), clock(t))).toBe(false);
    }
    expect(l.snapshot).toBe(before);
  });
});

describe('Healthy', () => {
  // The tracker has listened for a long time, so each process counts from zero.
  const listening = (at: number) => clock(at, -3_600_000);
  const policy = { windowMs: 10_000, minAttempts: 10, unhealthyRatio: 0.5, healthyRatio: 0.25 };

  it('is undefined until enough attempts, False above the threshold, True again only at the recovery ratio', () => {
    const l = ledger(policy);
    l.seed(EMPTY);
    let c = { delivered: 0, retried: 0 };
    let t = 1000;
    const send = (delivered: number, retried: number) => {
      c = { delivered: c.delivered + delivered, retried: c.retried + retried };
      t += 100;
      l.observe(msg('r', 500, t, c), listening(t));
    };
    send(2, 3);
    expect(l.snapshot.healthy).toBeUndefined();
    send(2, 5); // 4 of 12 ok: 67% failed
    expect(l.snapshot.healthy).toMatchObject({ status: false, reason: HealthReasons.DeliveriesFailing });
    send(8, 0); // 8 of 20 failed = 40%: below the threshold, above the recovery ratio
    expect(l.snapshot.healthy?.status).toBe(false);
    send(20, 0); // 8 of 40 = 20%
    expect(l.snapshot.healthy).toMatchObject({ status: true, reason: HealthReasons.DeliveriesSucceeding });
  });

  it('old attempts leave the window with time: failures a window ago no longer count', () => {
    const l = ledger(policy);
    l.seed(EMPTY);
    l.observe(msg('r', 500, 1000, { retried: 30 }), listening(1000));
    expect(l.snapshot.healthy?.status).toBe(false);
    l.observe(msg('r', 500, 12_000, { retried: 30, delivered: 12 }), listening(12_000));
    expect(l.snapshot.healthy?.status).toBe(true);
  });

  it('a window with too few attempts keeps the verdict (and its message) as it was', () => {
    const l = ledger(policy);
    l.seed(EMPTY);
    l.observe(msg('r', 500, 1000, { retried: 30 }), listening(1000));
    const verdict = l.snapshot.healthy;
    expect(l.tick(20_000)).toBe(false);
    l.observe(msg('r', 500, 20_000, { retried: 30, delivered: 3 }), listening(20_000));
    expect(l.snapshot.healthy).toEqual(verdict);
  });
});

/** The ledger's delivery as the operator would write it into status (healthy goes into a condition). */
function statusOf(d: InstanceDelivery) {
  const { healthy: _condition, ...status } = d;
  return status;
}
