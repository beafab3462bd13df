// One instance's delivery accounts: a persisted base plus what each runner process added since it was first
// heard, the waiting counts read from JetStream, the last error, the Healthy window, and the status they make.

import {
  type DeliveryTally,
  deliveryTally,
  type HealthJudgement,
  type HealthPolicy,
  judgeHealth,
  STATUS_COUNT_FIELDS,
  type StatusCounts,
  TALLY_FIELDS,
} from '../../api/delivery-status.js';
import { consumerName, LAST_ERROR_MESSAGE_MAX, type RunnerStatsMessage } from '../../api/jetstream.js';
import { truncateText } from '../../lib/text.js';
import type { BoundedMap } from './bounded-map.js';
import { HealthWindow } from './health-window.js';
import type { InstanceDelivery, InstanceKey, TrackerLimits } from './index.js';

/**
 * When a process is heard for the first time, are all its counts new, or only what it adds from now on?
 * New when it started while the tracker listened (more than FIRST_SIGHT_SLACK_MS after, by the process's own
 * clock: no skew between machines), so none of its counts can be in the status this tracker was seeded
 * with, and it is still young (at most FRESH_PROCESS_MS old), so it cannot be a process heard long ago whose
 * memory was dropped to bound the tracker. Otherwise (an operator restart, a long silence) its counts so far
 * may be counted already: they are its baseline. The doubt always falls on the side of counting less.
 */
export const FIRST_SIGHT_SLACK_MS = 2000;
export const FRESH_PROCESS_MS = 60_000;

const MAX_COUNT = Number.MAX_SAFE_INTEGER;

/** Times the ledger is given: a monotonic clock for elapsed times, the wall clock for timestamps. */
export interface Now {
  mono: number;
  wall: number;
  /** How long the tracker has been listening to stats (monotonic ms). */
  listeningMs: number;
}

export interface ProcessState {
  /** What this process had reported, as far as it was counted. */
  last: DeliveryTally;
  /** When it was last heard (monotonic ms). */
  heardAt: number;
}

interface LastErrorState {
  type: string;
  message: string;
  time: string;
  timeMs: number;
}

const zeroTally = (): DeliveryTally => ({
  delivered: 0,
  failed: 0,
  deadLettered: 0,
  filtered: 0,
  attempts: 0,
  failedAttempts: 0,
});

export const instanceKeyString = (key: InstanceKey) => `${key.namespace}/${key.name}`;

/** Where processes go when an instance has too many or is forgotten, so one heard again resumes. */
export type RetiredProcesses = BoundedMap<string, ProcessState>;

export class InstanceLedger {
  /** Given a persisted status; only seeded instances are reported to the operator. */
  seeded = false;
  private readonly totals: StatusCounts = { delivered: 0, failed: 0, deadLettered: 0, filtered: 0 };
  private retrying = 0;
  private backlog: number | undefined;
  private lastError: LastErrorState | undefined;
  private healthy: HealthJudgement | undefined;
  private readonly processes = new Map<string, ProcessState>();
  private readonly window: HealthWindow;
  private current: Readonly<InstanceDelivery>;
  /** The instance's consumer name (its backlog and retry counter); undefined for a name NATS cannot carry. */
  readonly consumer: string | undefined;

  constructor(
    readonly key: InstanceKey,
    private readonly policy: HealthPolicy,
    private readonly limits: TrackerLimits,
    private readonly retired: RetiredProcesses,
  ) {
    this.window = new HealthWindow(policy.windowMs);
    this.current = this.build();
    try {
      this.consumer = consumerName(key);
    } catch {
      this.consumer = undefined;
    }
  }

  get processCount(): number {
    return this.processes.size;
  }

  get snapshot(): Readonly<InstanceDelivery> {
    return this.current;
  }

  /** The persisted status as the base: counts, waiting counts, last error and verdict as they were written. */
  seed(status: InstanceDelivery): void {
    this.seeded = true;
    for (const f of STATUS_COUNT_FIELDS)
      this.totals[f] = Math.min(MAX_COUNT, this.totals[f] + count(status[f]));
    this.retrying = count(status.retrying);
    if (status.backlog !== undefined) this.backlog = count(status.backlog);
    const seededError = status.lastError && lastErrorState(status.lastError, Number.POSITIVE_INFINITY);
    if (seededError && (!this.lastError || seededError.timeMs > this.lastError.timeMs)) {
      this.lastError = seededError;
    }
    const h = status.healthy;
    if (!this.healthy && h && typeof h.status === 'boolean') {
      this.healthy = { status: h.status, reason: String(h.reason), message: String(h.message) };
    }
    this.refresh();
  }

  /**
   * Seeded again: this operator leads again, and another may have written status meanwhile. The stored counts
   * are a floor (what this ledger kept counting while standing by is already in it, so adding them would count
   * twice; writing less than is stored would go backwards). True when the status changed.
   */
  catchUp(status: InstanceDelivery): boolean {
    for (const f of STATUS_COUNT_FIELDS) this.totals[f] = Math.max(this.totals[f], count(status[f]));
    const storedError = status.lastError && lastErrorState(status.lastError, Number.POSITIVE_INFINITY);
    if (storedError && (!this.lastError || storedError.timeMs > this.lastError.timeMs)) {
      this.lastError = storedError;
    }
    return this.refresh();
  }

  /** One stats message of this instance's runners. True when the status changed. */
  observe(stats: RunnerStatsMessage, now: Now): boolean {
    const processKey = `${stats.replica}\u0000${stats.startedAt}`;
    const retiredKey = `${instanceKeyString(this.key)}\u0000${processKey}`;
    let p = this.processes.get(processKey);
    let allowedSeconds: number;
    if (p) {
      this.processes.delete(processKey); // re-inserted below: the map's order is least recently heard first
      allowedSeconds = (now.mono - p.heardAt) / 1000 + 1;
    } else {
      const resumed = this.retired.take(retiredKey);
      const age = Date.parse(stats.at) - Date.parse(stats.startedAt);
      if (resumed) {
        p = resumed;
        allowedSeconds = (now.mono - p.heardAt) / 1000 + 1;
      } else if (age >= 0 && age <= FRESH_PROCESS_MS && age + FIRST_SIGHT_SLACK_MS < now.listeningMs) {
        p = { last: zeroTally(), heardAt: now.mono };
        allowedSeconds = age / 1000 + 1;
      } else {
        // Started before we listened, or heard first when old: its counts so far may be counted already.
        p = { last: deliveryTally(stats.counters), heardAt: now.mono };
        allowedSeconds = 0;
      }
    }
    this.processes.set(processKey, p);
    this.retireBeyondLimit();

    const reported = deliveryTally(stats.counters);
    const allowance = Math.floor(allowedSeconds * this.limits.eventsPerSecondPerProcess);
    const delta = zeroTally();
    for (const f of TALLY_FIELDS) {
      // Less than before is a lie or a reordering, never a reason to go back; more than a process can do, a lie.
      const d = Math.min(Math.max(0, reported[f] - p.last[f]), allowance);
      p.last[f] += d;
      delta[f] = d;
    }
    p.heardAt = now.mono;
    for (const f of STATUS_COUNT_FIELDS) this.totals[f] = Math.min(MAX_COUNT, this.totals[f] + delta[f]);
    this.window.add(now.mono, delta.attempts, delta.failedAttempts);

    if (stats.lastError) {
      // A clock ahead of ours (or a made-up time) must not pin the last error: no error is later than now.
      const candidate = lastErrorState(stats.lastError, now.wall);
      if (candidate && (!this.lastError || candidate.timeMs > this.lastError.timeMs))
        this.lastError = candidate;
    }
    this.judge(now.mono);
    return this.refresh();
  }

  /** Backlog and retrying as JetStream reports them; undefined: not known this time (keeps the last). */
  waiting(counts: { backlog?: number | null; retrying?: number }): boolean {
    if (counts.backlog !== undefined)
      this.backlog = counts.backlog === null ? undefined : count(counts.backlog);
    if (counts.retrying !== undefined) this.retrying = count(counts.retrying);
    return this.refresh();
  }

  /** Time passed: old attempts leave the window, which may change the verdict. */
  tick(mono: number): boolean {
    if (this.window.isEmpty(mono)) return false;
    this.judge(mono);
    return this.refresh();
  }

  /** The instance is gone: its processes are retired, so their late stats do not count for a new namesake. */
  retireAll(): void {
    const prefix = `${instanceKeyString(this.key)}\u0000`;
    for (const [k, p] of this.processes) this.retired.set(prefix + k, p);
    this.processes.clear();
  }

  /** Processes not heard for `silentMs` (stopped, most likely) move to the retired, which forgets the oldest. */
  retireSilent(mono: number, silentMs: number): void {
    const prefix = `${instanceKeyString(this.key)}\u0000`;
    for (const [k, p] of this.processes) {
      if (mono - p.heardAt < silentMs) continue;
      this.processes.delete(k);
      this.retired.set(prefix + k, p);
    }
  }

  private retireBeyondLimit(): void {
    const prefix = `${instanceKeyString(this.key)}\u0000`;
    while (this.processes.size > this.limits.processesPerInstance) {
      const [oldest, p] = this.processes.entries().next().value as [string, ProcessState];
      this.processes.delete(oldest);
      this.retired.set(prefix + oldest, p);
    }
  }

  private judge(mono: number): void {
    this.healthy = judgeHealth(this.policy, this.window.totals(mono), this.healthy);
  }

  /** Rebuilds the status; the previous object stays (same reference) when nothing in it changed. */
  private refresh(): boolean {
    const next = this.build();
    if (sameDelivery(next, this.current)) return false;
    this.current = next;
    return true;
  }

  private build(): Readonly<InstanceDelivery> {
    const d: InstanceDelivery = {
      delivered: this.totals.delivered,
      retrying: this.retrying,
      failed: this.totals.failed,
      deadLettered: this.totals.deadLettered,
      filtered: this.totals.filtered,
    };
    if (this.lastError) {
      const { type, message, time } = this.lastError;
      d.lastError = Object.freeze({ type, message, time });
    }
    if (this.backlog !== undefined) d.backlog = this.backlog;
    if (this.healthy) d.healthy = Object.freeze({ ...this.healthy });
    return Object.freeze(d);
  }
}

/** A count as the status may hold it: a non-negative safe integer (anything else counts as 0). */
function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(MAX_COUNT, Math.max(0, Math.floor(v))) : 0;
}

function lastErrorState(
  e: { type: unknown; message: unknown; time: unknown },
  notAfterMs: number,
): LastErrorState | undefined {
  if (typeof e.type !== 'string' || e.type.length === 0 || e.type.length > 64) return undefined;
  const parsed = typeof e.time === 'string' ? Date.parse(e.time) : Number.NaN;
  if (!Number.isFinite(parsed)) return undefined;
  const timeMs = Math.min(parsed, notAfterMs);
  const message = typeof e.message === 'string' ? truncateText(e.message, LAST_ERROR_MESSAGE_MAX) : '';
  return { type: e.type, message, time: new Date(timeMs).toISOString(), timeMs };
}

export function sameDelivery(a: InstanceDelivery, b: InstanceDelivery): boolean {
  return (
    a.delivered === b.delivered &&
    a.retrying === b.retrying &&
    a.failed === b.failed &&
    a.deadLettered === b.deadLettered &&
    a.filtered === b.filtered &&
    a.backlog === b.backlog &&
    a.lastError?.type === b.lastError?.type &&
    a.lastError?.message === b.lastError?.message &&
    a.lastError?.time === b.lastError?.time &&
    a.healthy?.status === b.healthy?.status &&
    a.healthy?.reason === b.healthy?.reason &&
    a.healthy?.message === b.healthy?.message
  );
}
