// Cumulative counters of one replica: published over NATS for the operator, exposed to Prometheus.
// Counters only grow, so the operator can sum replicas and a restart shows as a new startedAt. The last
// failed attempt travels beside them (redacted, bounded) for the instance's status.lastError.

import type { NatsConnection } from 'nats';
import {
  type InstanceRef,
  LAST_ERROR_MESSAGE_MAX,
  type LastError,
  type RunnerCounters,
  type RunnerStats,
  statsSubject,
  type Topology,
} from '../api/jetstream.js';
import { ERROR_TYPES, type ErrorType } from '../api/outcome.js';
import { Histogram, Registry } from '../lib/metrics.js';
import { truncateText } from '../lib/text.js';
import { Redactor } from '../sandbox/index.js';

const LABELS = ['namespace', 'function_instance'] as const;

export interface StatsIdentity {
  instance: InstanceRef;
  replica: string;
  revision: string;
}

export class Stats {
  readonly counters: RunnerCounters = {
    received: 0,
    delivered: 0,
    filtered: 0,
    retried: 0,
    discarded: {},
    deadLettered: 0,
    released: 0,
    deadLetteredFromAdvisory: 0,
    invocations: 0,
    executionMs: 0,
  };
  readonly startedAt = new Date().toISOString();
  /** The most recent failed attempt (retried, discarded, dead-lettered or crashed). */
  lastError: LastError | undefined;
  /** Duration of each handler call (seconds): the latency users ask about first. Prometheus only. */
  readonly durations = new Histogram(
    'dfn_runner_invocation_duration_seconds',
    'Duration of handler calls (one per event, or per onBatch call).',
    LABELS,
  );
  private readonly labels: { namespace: string; function_instance: string };

  constructor(
    readonly identity: StatsIdentity,
    private readonly redactor: Redactor = new Redactor([]),
  ) {
    this.labels = { namespace: identity.instance.namespace, function_instance: identity.instance.name };
  }

  /** Counts one handler call's time in the counters and the histogram. */
  invoked(durationMs: number): void {
    this.counters.executionMs += durationMs;
    this.durations.observe(this.labels, durationMs / 1000);
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

export interface Gauges {
  inFlight: number;
  natsConnected: boolean;
  ready: boolean;
  sandboxRebuilds: number;
}

/**
 * The Prometheus exposition, rendered at scrape time from the same counters that go to the operator, so the
 * two can never disagree; the invocation-duration histogram is the one series kept only for Prometheus.
 */
export function prometheusText(stats: Stats, gauges: Gauges): string {
  const { instance, revision, replica } = stats.identity;
  const labels = { namespace: instance.namespace, function_instance: instance.name };
  const c = stats.counters;
  const r = new Registry();
  const counter = (name: string, help: string, value: number) =>
    r.counter(name, help, LABELS).inc(labels, value);
  const gauge = (name: string, help: string, value: number) => r.gauge(name, help, LABELS).set(labels, value);
  counter(
    'dfn_runner_events_received_total',
    'Messages taken from the consumer, redeliveries included.',
    c.received,
  );
  counter('dfn_runner_events_delivered_total', 'Events the function handled successfully.', c.delivered);
  counter(
    'dfn_runner_events_filtered_total',
    'Events stopped by destination filters or integrations.',
    c.filtered,
  );
  counter('dfn_runner_events_retried_total', 'Failed attempts handed back for a later attempt.', c.retried);
  const discarded = r.counter('dfn_runner_events_discarded_total', 'Attempts discarded, by error type.', [
    ...LABELS,
    'error_type',
  ]);
  for (const t of Object.keys(ERROR_TYPES) as ErrorType[]) {
    if (ERROR_TYPES[t].outcome === 'discard')
      discarded.inc({ ...labels, error_type: t }, c.discarded[t] ?? 0);
  }
  counter(
    'dfn_runner_events_dead_lettered_total',
    'Events dead-lettered after their last attempt or crash.',
    c.deadLettered,
  );
  counter('dfn_runner_events_released_total', 'Events handed back unprocessed at shutdown.', c.released);
  counter(
    'dfn_runner_events_dead_lettered_from_advisory_total',
    "Events dead-lettered from JetStream's max-deliveries advisory (the max_deliver backstop).",
    c.deadLetteredFromAdvisory,
  );
  counter('dfn_runner_invocations_total', 'Handler calls (single-event or onBatch).', c.invocations);
  counter('dfn_runner_execution_seconds_total', 'Time spent in handlers.', c.executionMs / 1000);
  counter(
    'dfn_runner_sandbox_rebuilds_total',
    'Isolates rebuilt after running out of memory or time.',
    gauges.sandboxRebuilds,
  );
  gauge('dfn_runner_in_flight_events', 'Events held right now.', gauges.inFlight);
  gauge('dfn_runner_nats_connected', '1 while connected to NATS.', gauges.natsConnected ? 1 : 0);
  gauge('dfn_runner_ready', '1 while consuming.', gauges.ready ? 1 : 0);
  r.gauge('dfn_runner_info', 'Revision of the function this replica runs.', [
    ...LABELS,
    'revision',
    'replica',
  ]).set({ ...labels, revision, replica }, 1);
  return r.render() + stats.durations.render();
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
