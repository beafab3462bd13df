// The seam between the operator core and delivery status (operator/delivery/, built beside this branch):
// what the instance reconciler reads of an instance's delivery. The shapes are those of
// briefs/contract-delivery.md; operator/delivery/index.ts's DeliveryTracker provides them.

import type { Registry } from 'prom-client';
import type { ObjectKey } from './machinery/controller.js';

/** What the operator writes into a FunctionInstance's status from delivery. */
export interface InstanceDelivery {
  delivered: number;
  retrying: number;
  failed: number;
  deadLettered: number;
  filtered: number;
  lastError?: { type: string; message: string; time: string };
  backlog?: number;
  /** undefined until enough events were seen to judge. */
  healthy?: { status: boolean; reason: string; message: string };
}

export interface DeliverySource {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Before the first current() of an instance: its persisted status (an operator restart continues). */
  seed(key: ObjectKey, status: InstanceDelivery): void;
  current(key: ObjectKey): InstanceDelivery | undefined;
  /** The instance is gone (its finalizer ran). */
  forget(key: ObjectKey): void;
  registerMetrics(registry: Registry): void;
}
