// The seam between the operator core and delivery status: what the instance reconciler reads of an
// instance's delivery, and what a delivery source is built from. operator/delivery/'s DeliveryTracker is the
// one implementation; tests of the core may put a stand-in in its place.

import type { JetStreamManager, NatsConnection } from 'nats';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Topology } from '../api/jetstream.js';
import type { ObjectKey } from './machinery/controller.js';

/** What the operator writes into a FunctionInstance's status from delivery. Fields per api/delivery-status.ts. */
export interface InstanceDelivery {
  delivered: number;
  retrying: number;
  failed: number;
  deadLettered: number;
  filtered: number;
  lastError?: { type: string; message: string; time: string };
  /** The consumer's pending count; absent while the instance has no consumer. */
  backlog?: number;
  /** undefined until enough events were seen to judge. */
  healthy?: { status: boolean; reason: string; message: string };
}

/** What a delivery source is built from, once the operator's NATS connection is up. */
export interface DeliveryContext {
  nc: NatsConnection;
  jsm: JetStreamManager;
  topology: Topology;
  log: Logger;
  /** The instance's delivery changed: its status (and its function's sums) are written again. */
  onChange: (key: ObjectKey) => void;
}

export interface DeliverySource {
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Before the first current() of an instance: its persisted status (an operator restart continues). Each
   * leading session seeds again: the status is then a floor (another leader may have written meanwhile).
   */
  seed(key: ObjectKey, status: InstanceDelivery): void;
  current(key: ObjectKey): InstanceDelivery | undefined;
  /** The instance is gone (its finalizer ran). */
  forget(key: ObjectKey): void;
  registerMetrics(registry: Registry): void;
}
