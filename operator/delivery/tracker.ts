// The DeliveryTracker: subscribes to every runner's stats, polls the consumers' pending counts, and keeps one
// ledger per instance; tells the operator (debounced) when an instance's delivery status changed.

import { performance } from 'node:perf_hooks';
import type { Subscription } from 'nats';
import type { Registry } from 'prom-client';
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from '../../api/delivery-status.js';
import { statsWildcard } from '../../api/jetstream.js';
import type { DeliverySource } from '../delivery-seam.js';
import { BoundedMap } from './bounded-map.js';
import {
  DEFAULT_TRACKER_LIMITS,
  type DeliveryTrackerOptions,
  type InstanceDelivery,
  type InstanceKey,
  type TrackerLimits,
} from './index.js';
import { InstanceLedger, instanceKeyString, type Now, type ProcessState } from './ledger.js';
import { DeliveryMetrics, type TrackerSizes } from './metrics.js';
import { parseStatsMessage } from './stats-message.js';
import { waitingCounts } from './waiting-counts.js';

const DEFAULT_POLL_INTERVAL_MS = 5000;
const DEFAULT_DEBOUNCE_MS = 250;
/** A process not heard for this long has most likely stopped: it leaves the live table for the retired. */
const SILENT_PROCESS_MS = 10 * 60_000;
/** A refused message is logged at most this often per reason: a flood must not become a flood of logs. */
const REJECT_LOG_INTERVAL_MS = 60_000;

type TrackerState = 'new' | 'started' | 'stopped';

export class DeliveryTracker implements DeliverySource {
  private readonly policy: HealthPolicy;
  private readonly limits: TrackerLimits;
  private readonly pollIntervalMs: number;
  private readonly debounceMs: number;
  /** Instances the operator seeded: reported to it, polled for backlog and retrying. */
  private readonly seeded = new Map<string, InstanceLedger>();
  /** Instances only heard of, bounded: their counts wait for a seed (or fall out). */
  private readonly unseeded: BoundedMap<string, InstanceLedger>;
  private readonly retired: BoundedMap<string, ProcessState>;
  private readonly metrics: DeliveryMetrics;
  private readonly dirty = new Set<string>();
  private readonly lastRejectLog = new Map<string, number>();
  private state: TrackerState = 'new';
  private sub: Subscription | undefined;
  private listeningSince = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(private readonly options: DeliveryTrackerOptions) {
    this.policy = { ...DEFAULT_HEALTH_POLICY, ...options.health };
    this.limits = { ...DEFAULT_TRACKER_LIMITS, ...options.limits };
    this.pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.retired = new BoundedMap(this.limits.retiredProcesses);
    this.unseeded = new BoundedMap(this.limits.unseededInstances, (_k, ledger) => ledger.retireAll());
    this.metrics = new DeliveryMetrics(
      () => this.reported(),
      () => this.sizes(),
    );
  }

  /** Subscribes to the stats subjects and starts polling. A tracker runs once: make a new one to run again. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`the delivery tracker cannot start: it is ${this.state}`);
    this.state = 'started';
    const { nc, topology } = this.options;
    this.sub = nc.subscribe(statsWildcard(topology), {
      callback: (err, msg) => {
        if (err) {
          this.options.log.warn({ err }, 'runner stats subscription error');
          return;
        }
        this.receive(msg.subject, msg.data);
      },
    });
    // Listening counts from now: a process started later cannot be in a status written before (the previous
    // leader stopped first). Waiting for the server to have the subscription is only for a prompt start.
    this.listeningSince = performance.now();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      nc.flush().catch(() => {}),
      new Promise((r) => {
        timer = setTimeout(r, 5000);
      }),
    ]);
    clearTimeout(timer);
    this.pollTimer = setInterval(() => void this.poll(), this.pollIntervalMs);
    this.pollTimer.unref();
    this.healthTimer = setInterval(() => this.tickHealth(), Math.max(100, this.policy.windowMs / 10));
    this.healthTimer.unref();
    await this.poll();
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    clearInterval(this.pollTimer);
    clearInterval(this.healthTimer);
    clearTimeout(this.flushTimer);
    this.dirty.clear();
    try {
      this.sub?.unsubscribe();
    } catch {
      // The connection closed already: there is nothing left to unsubscribe from.
    }
    await this.polling;
  }

  /**
   * Before the first current() of an instance: its persisted status (an operator restart continues). Seeded
   * again (this operator leads again), the status is a floor for the counts.
   */
  seed(key: InstanceKey, status: InstanceDelivery): void {
    const k = instanceKeyString(key);
    const existing = this.seeded.get(k);
    if (existing) {
      // Leading again (a new session seeds anew): adding the status would count it twice, but another leader
      // may have written more meanwhile; the status is a floor.
      if (existing.catchUp(status)) this.changed(existing);
      return;
    }
    const ledger = this.unseeded.take(k) ?? this.newLedger(key);
    ledger.seed(status);
    this.seeded.set(k, ledger);
    if (this.state === 'started') void this.poll();
  }

  current(key: InstanceKey): InstanceDelivery | undefined {
    const ledger = this.seeded.get(instanceKeyString(key));
    if (!ledger) return undefined;
    return ledger.snapshot;
  }

  /** The instance is gone (finalizer ran). Late stats of its runners will not count for a namesake. */
  forget(key: InstanceKey): void {
    const k = instanceKeyString(key);
    const ledger = this.seeded.get(k) ?? this.unseeded.take(k);
    this.seeded.delete(k);
    this.dirty.delete(k);
    ledger?.retireAll();
  }

  /** Registers the tracker's metrics (backlog gauge per instance, …) on the operator's prom-client registry. */
  registerMetrics(registry: Registry): void {
    this.metrics.register(registry);
  }

  private sizes(): TrackerSizes {
    let processes = 0;
    for (const l of this.seeded.values()) processes += l.processCount;
    for (const l of this.unseeded.values()) processes += l.processCount;
    return {
      seeded_instances: this.seeded.size,
      unseeded_instances: this.unseeded.size,
      processes,
      retired_processes: this.retired.size,
    };
  }

  private *reported(): Iterable<[InstanceKey, Readonly<InstanceDelivery>]> {
    for (const ledger of this.seeded.values()) yield [ledger.key, ledger.snapshot];
  }

  private newLedger(key: InstanceKey): InstanceLedger {
    return new InstanceLedger({ ...key }, this.policy, this.limits, this.retired);
  }

  private now(): Now {
    const mono = performance.now();
    return { mono, wall: Date.now(), listeningMs: mono - this.listeningSince };
  }

  /** One message on the stats subjects. Never throws: a message must not be able to stop the others. */
  private receive(subject: string, data: Uint8Array): void {
    if (this.state !== 'started') return;
    try {
      const parsed = parseStatsMessage(this.options.topology, subject, data);
      if (!parsed.ok) {
        this.refused(parsed.reason, subject, parsed.detail);
        return;
      }
      const { stats } = parsed;
      const key = { namespace: stats.instance.namespace, name: stats.instance.name };
      const k = instanceKeyString(key);
      let ledger = this.seeded.get(k) ?? this.unseeded.get(k);
      if (!ledger) {
        ledger = this.newLedger(key);
        this.unseeded.set(k, ledger);
      }
      this.metrics.statsMessages.inc({ result: 'accepted' });
      if (ledger.observe(stats, this.now())) this.changed(ledger);
    } catch (err) {
      this.refused('error', subject, (err as Error).message);
    }
  }

  private refused(reason: string, subject: string, detail: string): void {
    this.metrics.statsMessages.inc({ result: reason });
    const now = Date.now();
    if (now - (this.lastRejectLog.get(reason) ?? 0) < REJECT_LOG_INTERVAL_MS) return;
    this.lastRejectLog.set(reason, now);
    this.options.log.warn(
      { reason, subject: subject.slice(0, 256), detail: detail.slice(0, 256) },
      'refused a runner stats message (repeats are counted, not logged, for a minute)',
    );
  }

  /** Backlog and retrying of every seeded instance, one listing per stream; one poll at a time. */
  private poll(): Promise<void> {
    if (this.polling || this.state !== 'started' || this.seeded.size === 0)
      return this.polling ?? Promise.resolve();
    this.polling = (async () => {
      try {
        const counts = await waitingCounts(this.options.jsm, this.options.topology);
        if (this.state !== 'started') return;
        for (const ledger of this.seeded.values()) {
          const name = ledger.consumer;
          if (name === undefined) continue;
          // No instance consumer: no backlog to show. No retry counter yet: keep what we had.
          const changed = ledger.waiting({
            backlog: counts.backlog.get(name) ?? null,
            retrying: counts.retrying.get(name),
          });
          if (changed) this.changed(ledger);
        }
      } catch (err) {
        this.metrics.pollErrors.inc();
        this.refusedPoll(err);
      } finally {
        this.polling = undefined;
      }
    })();
    return this.polling;
  }

  private refusedPoll(err: unknown): void {
    const now = Date.now();
    if (now - (this.lastRejectLog.get('poll') ?? 0) < REJECT_LOG_INTERVAL_MS) return;
    this.lastRejectLog.set('poll', now);
    this.options.log.warn({ err }, 'could not read the consumers’ pending counts; backlog and retrying kept');
  }

  private tickHealth(): void {
    const mono = performance.now();
    for (const ledger of this.seeded.values()) {
      if (ledger.tick(mono)) this.changed(ledger);
      ledger.retireSilent(mono, SILENT_PROCESS_MS);
    }
    for (const ledger of this.unseeded.values()) {
      ledger.tick(mono);
      ledger.retireSilent(mono, SILENT_PROCESS_MS);
    }
  }

  private changed(ledger: InstanceLedger): void {
    if (!ledger.seeded || this.state !== 'started') return;
    this.dirty.add(instanceKeyString(ledger.key));
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), this.debounceMs);
    this.flushTimer.unref();
  }

  private flush(): void {
    this.flushTimer = undefined;
    const keys = [...this.dirty];
    this.dirty.clear();
    for (const k of keys) {
      const ledger = this.seeded.get(k);
      if (!ledger) continue;
      try {
        this.options.onChange({ ...ledger.key });
      } catch (err) {
        this.options.log.error({ instance: k, err }, 'the delivery status change handler failed');
      }
    }
  }
}
