// The tracker's Prometheus series (prom-client, on the operator's registry): the backlog and retrying gauges
// per instance, read at scrape time so a forgotten instance's series goes with it, and the stats it refused.

import { Counter, Gauge, type Registry } from 'prom-client';
import type { InstanceDelivery, InstanceKey } from './index.js';

const INSTANCE_LABELS = ['namespace', 'function_instance'] as const;

export interface TrackerSizes {
  seeded_instances: number;
  unseeded_instances: number;
  processes: number;
  retired_processes: number;
}

export class DeliveryMetrics {
  readonly statsMessages = new Counter({
    name: 'dfn_operator_runner_stats_messages_total',
    help: 'Runner stats messages received, by result: accepted, or why they were refused.',
    labelNames: ['result'] as const,
    registers: [],
  });
  readonly pollErrors = new Counter({
    name: 'dfn_operator_delivery_poll_errors_total',
    help: 'Failed reads of the consumers’ pending counts (backlog and retrying keep their last values).',
    registers: [],
  });
  private readonly tracked: Gauge<'kind'>;
  private readonly backlog: Gauge<(typeof INSTANCE_LABELS)[number]>;
  private readonly retrying: Gauge<(typeof INSTANCE_LABELS)[number]>;

  constructor(
    instances: () => Iterable<[InstanceKey, Readonly<InstanceDelivery>]>,
    sizes: () => TrackerSizes,
  ) {
    const perInstance = (pick: (d: Readonly<InstanceDelivery>) => number | undefined) =>
      function (this: Gauge<(typeof INSTANCE_LABELS)[number]>) {
        this.reset();
        for (const [key, delivery] of instances()) {
          const value = pick(delivery);
          if (value !== undefined) this.set({ namespace: key.namespace, function_instance: key.name }, value);
        }
      };
    this.tracked = new Gauge({
      name: 'dfn_operator_delivery_tracked',
      help: 'What the delivery tracker holds, by kind: all of it bounded (limits in operator/delivery).',
      labelNames: ['kind'] as const,
      registers: [],
      collect() {
        for (const [kind, n] of Object.entries(sizes())) this.set({ kind }, n);
      },
    });
    this.backlog = new Gauge({
      name: 'dfn_operator_instance_backlog',
      help: "Events waiting in a FunctionInstance's consumer, not yet delivered to a runner: scale replicas on it.",
      labelNames: INSTANCE_LABELS,
      registers: [],
      collect: perInstance((d) => d.backlog),
    });
    this.retrying = new Gauge({
      name: 'dfn_operator_instance_retrying',
      help: 'Events of a FunctionInstance waiting for their next attempt (retries scheduled in the retry stream).',
      labelNames: INSTANCE_LABELS,
      registers: [],
      collect: perInstance((d) => d.retrying),
    });
  }

  register(registry: Registry): void {
    registry.registerMetric(this.statsMessages);
    registry.registerMetric(this.pollErrors);
    registry.registerMetric(this.tracked);
    registry.registerMetric(this.backlog);
    registry.registerMetric(this.retrying);
  }
}
