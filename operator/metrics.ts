// The operator's Prometheus series (prom-client): reconciles, errors, queue depth, status writes, applies,
// leadership. One registry per operator; the delivery tracker registers its own series on it.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { processRegistry } from '../lib/telemetry.js';

export interface OperatorMetrics {
  registry: Registry;
  reconciles: Counter<'kind' | 'result'>;
  reconcileErrors: Counter<'kind'>;
  reconcileDuration: Histogram<'kind'>;
  queueDepth: Gauge<'kind'>;
  statusWrites: Counter<'kind'>;
  statusWritesSkipped: Counter<'kind' | 'reason'>;
  applies: Counter<'resource' | 'action'>;
  leader: Gauge;
}

export function operatorMetrics(registry: Registry = processRegistry('dfn_operator_')): OperatorMetrics {
  const registers = [registry];
  return {
    registry,
    reconciles: new Counter({
      name: 'dfn_operator_reconciles_total',
      help: 'Reconciles by kind and result (success, requeue, error).',
      labelNames: ['kind', 'result'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'dfn_operator_reconcile_errors_total',
      help: 'Reconciles that failed and were retried with backoff.',
      labelNames: ['kind'],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'dfn_operator_reconcile_duration_seconds',
      help: 'Time one reconcile took.',
      labelNames: ['kind'],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'dfn_operator_queue_depth',
      help: 'Keys waiting in the work queue.',
      labelNames: ['kind'],
      registers,
    }),
    statusWrites: new Counter({
      name: 'dfn_operator_status_writes_total',
      help: 'Status subresource writes.',
      labelNames: ['kind'],
      registers,
    }),
    statusWritesSkipped: new Counter({
      name: 'dfn_operator_status_writes_skipped_total',
      help: 'Status writes not made: unchanged, or deferred by the per-object rate limit.',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    applies: new Counter({
      name: 'dfn_operator_applies_total',
      help: 'Objects applied (server-side apply) or deleted by the operator.',
      labelNames: ['resource', 'action'],
      registers,
    }),
    leader: new Gauge({
      name: 'dfn_operator_leader',
      help: '1 while this operator holds the leader lease.',
      registers,
    }),
  };
}
