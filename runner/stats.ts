// Cumulative counters of one replica: published over NATS for the operator, exposed to Prometheus by
// runner/metrics.ts. Counters only grow, so the operator can sum replicas and a restart shows as a new
// startedAt. The last failed attempt travels beside them (redacted, bounded) for the instance's status.lastError.

import type { NatsConnection } from 'nats';
import { Histogram } from 'prom-client';
import {
  type InstanceRef,
  LAST_ERROR_MESSAGE_MAX,
  type LastError,
  type RunnerCounters,
  type RunnerStats,
  runnerCounters,
  statsSubject,
  type Topology,
} from '../api/jetstream.js';
import type { ErrorType } from '../api/outcome.js';
import { MAX_BATCH_SIZE } from '../api/runner-config.js';
import { LATENCY_BUCKETS } from '../lib/telemetry.js';
import { truncateText } from '../lib/text.js';
import { Redactor } from '../sandbox/index.js';

/** The labels of every runner series: a replica serves one instance. */
export const INSTANCE_LABELS = ['namespace', 'function_instance'] as const;
export type InstanceLabels = Record<(typeof INSTANCE_LABELS)[number], string>;

/** Events per sandbox call: powers of two, then the largest batch there can be. */
const CALL_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, MAX_BATCH_SIZE];

export interface StatsIdentity {
  instance: InstanceRef;
  replica: string;
  revision: string;
}

export class Stats {
  readonly counters: RunnerCounters = runnerCounters();
  readonly startedAt = new Date().toISOString();
  /** The most recent failed attempt (retried, discarded, dead-lettered or crashed). */
  lastError: LastError | undefined;
  /**
   * Duration of each handler call (seconds): the latency users ask about first. Prometheus only, so it
   * belongs to no registry until runner/metrics.ts registers it on the process's.
   */
  readonly durations = new Histogram({
    name: 'dfn_runner_invocation_duration_seconds',
    help: 'Duration of handler calls (one per event, or per onBatch call).',
    labelNames: INSTANCE_LABELS,
    buckets: LATENCY_BUCKETS,
    registers: [],
  });
  /**
   * Events carried by each call into the sandbox: a micro-batch of single-handler events, or one onBatch
   * batch. Mostly 1 under a trickle means every event pays a whole call (see the invoker's linger).
   */
  readonly callSizes = new Histogram({
    name: 'dfn_runner_sandbox_call_events',
    help: 'Events carried by each call into the sandbox (a micro-batch of single events, or an onBatch batch).',
    labelNames: INSTANCE_LABELS,
    buckets: CALL_SIZE_BUCKETS,
    registers: [],
  });
  /**
   * Each sandbox call from hand-over to answer: the handlers' time plus the wait behind other calls in the
   * sandbox process and the crossing. Well above the invocation durations, the sandbox process is where
   * events queue: a replica more, or fewer events held at once, brings latency down.
   */
  readonly callTimes = new Histogram({
    name: 'dfn_runner_sandbox_call_seconds',
    help: 'Time of each call into the sandbox, from hand-over to answer (handlers, queueing, crossing).',
    labelNames: INSTANCE_LABELS,
    buckets: LATENCY_BUCKETS,
    registers: [],
  });
  readonly instanceLabels: InstanceLabels;
  /** The histograms' one series each, looked up once: every call records into them directly. */
  private readonly duration: { observe(seconds: number): void };
  private readonly callSize: { observe(events: number): void };
  private readonly callTime: { observe(seconds: number): void };

  constructor(
    readonly identity: StatsIdentity,
    private readonly redactor: Redactor = new Redactor([]),
  ) {
    this.instanceLabels = {
      namespace: identity.instance.namespace,
      function_instance: identity.instance.name,
    };
    // Present from the start at 0, so a rate over the first calls sees them all.
    for (const h of [this.durations, this.callSizes, this.callTimes]) h.zero(this.instanceLabels);
    this.duration = this.durations.labels(this.instanceLabels);
    this.callSize = this.callSizes.labels(this.instanceLabels);
    this.callTime = this.callTimes.labels(this.instanceLabels);
  }

  /** Counts one handler call's time in the counters and the histogram. */
  invoked(durationMs: number): void {
    this.counters.executionMs += durationMs;
    this.duration.observe(durationMs / 1000);
  }

  /** One call into the sandbox: how many events it carried and how long it took (ms) until answered. */
  sandboxCall(events: number, elapsedMs: number): void {
    this.callSize.observe(events);
    this.callTime.observe(elapsedMs / 1000);
  }

  discarded(errorType: ErrorType): void {
    this.counters.discarded[errorType] = (this.counters.discarded[errorType] ?? 0) + 1;
  }

  /** Remembers a failed attempt as the last error: redacted first, then cut, so no secret is cut in two. */
  failedAttempt(type: ErrorType, message: string, time = new Date()): void {
    this.lastError = {
      type,
      message: truncateText(this.redactor.text(message), LAST_ERROR_MESSAGE_MAX),
      time: time.toISOString(),
    };
  }

  snapshot(inFlight: number): RunnerStats {
    return {
      ...this.identity,
      startedAt: this.startedAt,
      at: new Date().toISOString(),
      inFlight,
      counters: { ...this.counters, discarded: { ...this.counters.discarded } },
      ...(this.lastError ? { lastError: { ...this.lastError } } : {}),
    };
  }
}

/** Publishes the counters on the instance's stats subject every interval, and once more on stop. */
export class StatsPublisher {
  private timer: NodeJS.Timeout | undefined;
  private readonly subject: string;

  constructor(
    private readonly nc: NatsConnection,
    topology: Topology,
    private readonly stats: Stats,
    private readonly inFlight: () => number,
  ) {
    this.subject = statsSubject(topology, stats.identity.instance);
  }

  start(intervalMs: number): void {
    this.publish();
    this.timer = setInterval(() => this.publish(), intervalMs);
    this.timer.unref();
  }

  publish(): void {
    if (this.nc.isClosed()) return;
    // Core NATS, not JetStream: the operator only ever needs the latest counters.
    this.nc.publish(this.subject, JSON.stringify(this.stats.snapshot(this.inFlight())));
  }

  /** Final publish, flushed to the server (shutdown). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.nc.isClosed()) return;
    this.publish();
    // Bounded: a server that went away must not hold up the exit.
    await Promise.race([this.nc.flush().catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}
