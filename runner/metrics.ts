// The runner's Prometheus series (prom-client), read at scrape time from the counters that go to the
// operator, so the two can never disagree; the histograms (handler durations, sandbox calls) are recorded by
// Stats itself.

import { Counter, Gauge, Registry } from 'prom-client';
import type { RunnerCounters } from '../api/jetstream.js';
import { ERROR_TYPES, type ErrorType } from '../api/outcome.js';
import { INSTANCE_LABELS, type Stats } from './stats.js';

/** What the runner knows only at scrape time, beside its counters. */
export interface Gauges {
  inFlight: number;
  natsConnected: boolean;
  ready: boolean;
  sandboxRebuilds: number;
}

type Series = readonly [name: string, help: string, value: (c: RunnerCounters, g: Gauges) => number];

const COUNTERS: readonly Series[] = [
  [
    'dfn_runner_events_received_total',
    'Messages taken from the consumer, redeliveries included.',
    (c) => c.received,
  ],
  ['dfn_runner_events_delivered_total', 'Events the function handled successfully.', (c) => c.delivered],
  [
    'dfn_runner_events_filtered_total',
    'Events stopped by destination filters or integrations.',
    (c) => c.filtered,
  ],
  ['dfn_runner_events_retried_total', 'Failed attempts handed back for a later attempt.', (c) => c.retried],
  [
    'dfn_runner_events_dead_lettered_total',
    'Events dead-lettered after their last attempt or crash.',
    (c) => c.deadLettered,
  ],
  ['dfn_runner_events_released_total', 'Events handed back unprocessed at shutdown.', (c) => c.released],
  [
    'dfn_runner_events_dead_lettered_from_advisory_total',
    "Events dead-lettered from JetStream's max-deliveries advisory (the max_deliver backstop).",
    (c) => c.deadLetteredFromAdvisory,
  ],
  ['dfn_runner_invocations_total', 'Handler calls (single-event or onBatch).', (c) => c.invocations],
  ['dfn_runner_execution_seconds_total', 'Time spent in handlers.', (c) => c.executionMs / 1000],
  [
    'dfn_runner_sandbox_rebuilds_total',
    'Isolates rebuilt after running out of memory or time.',
    (_c, g) => g.sandboxRebuilds,
  ],
];

const GAUGES: readonly Series[] = [
  ['dfn_runner_in_flight_events', 'Events held right now.', (_c, g) => g.inFlight],
  ['dfn_runner_nats_connected', '1 while connected to NATS.', (_c, g) => (g.natsConnected ? 1 : 0)],
  ['dfn_runner_ready', '1 while consuming.', (_c, g) => (g.ready ? 1 : 0)],
];

/** Discards are counted per error type; every type that discards has a series, 0 until it happens. */
const DISCARD_TYPES = (Object.keys(ERROR_TYPES) as ErrorType[]).filter(
  (t) => ERROR_TYPES[t].outcome === 'discard',
);

/**
 * Registers the runner's series on `registry`, each read from `stats` and `gauges()` when scraped. The
 * runner process passes its process registry (default metrics included); without one, its series only.
 */
export function runnerRegistry(
  stats: Stats,
  gauges: () => Gauges,
  registry: Registry = new Registry(),
): Registry {
  const registers = [registry];
  const labels = stats.instanceLabels;
  for (const [name, help, value] of COUNTERS) {
    new Counter({
      name,
      help,
      labelNames: INSTANCE_LABELS,
      registers,
      collect() {
        // A counter cannot be set; the source only grows, so resetting and adding it back is the same.
        this.reset();
        this.inc(labels, value(stats.counters, gauges()));
      },
    });
  }
  new Counter({
    name: 'dfn_runner_events_discarded_total',
    help: 'Attempts discarded, by error type.',
    labelNames: [...INSTANCE_LABELS, 'error_type'],
    registers,
    collect() {
      this.reset();
      for (const t of DISCARD_TYPES) this.inc({ ...labels, error_type: t }, stats.counters.discarded[t] ?? 0);
    },
  });
  for (const [name, help, value] of GAUGES) {
    new Gauge({
      name,
      help,
      labelNames: INSTANCE_LABELS,
      registers,
      collect() {
        this.set(labels, value(stats.counters, gauges()));
      },
    });
  }
  const { revision, replica } = stats.identity;
  new Gauge({
    name: 'dfn_runner_info',
    help: 'Revision of the function this replica runs.',
    labelNames: [...INSTANCE_LABELS, 'revision', 'replica'],
    registers,
  }).set({ ...labels, revision, replica }, 1);
  for (const h of [stats.durations, stats.callSizes, stats.callTimes]) registry.registerMetric(h);
  return registry;
}
