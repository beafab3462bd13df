// Delivery status of FunctionInstances: runner stats over NATS and the instances' consumers, turned into what
// the operator writes into `.status`. It implements the operator core's seam (operator/delivery-seam.ts).

import type { HealthPolicy } from '../../api/delivery-status.js';
import type { DeliveryContext, DeliverySource } from '../delivery-seam.js';
import type { ObjectKey } from '../machinery/controller.js';
import { DeliveryTracker } from './tracker.js';

export type { InstanceDelivery } from '../delivery-seam.js';
export type InstanceKey = ObjectKey;

/** How the tracker judges and polls; every field has a default. */
export interface DeliveryTrackerSettings {
  /** How often backlog and retrying are read from JetStream (ms). Default 5000. */
  pollIntervalMs?: number;
  /** Changes within this long are reported once (ms). Default 250. */
  debounceMs?: number;
  /** When Healthy flips. Default DEFAULT_HEALTH_POLICY (api/delivery-status.ts). */
  health?: Partial<HealthPolicy>;
  /** Bounds on what the stats subjects can make the tracker hold. Defaults in DEFAULT_TRACKER_LIMITS. */
  limits?: Partial<TrackerLimits>;
}

/** The operator's context (its NATS connection, logger, and onChange, debounced by the tracker) and settings. */
export type DeliveryTrackerOptions = DeliveryContext & DeliveryTrackerSettings;

/** The delivery source of OperatorOptions.delivery: a DeliveryTracker with these settings. */
export const deliveryTracker =
  (settings: DeliveryTrackerSettings = {}) =>
  (context: DeliveryContext): DeliverySource =>
    new DeliveryTracker({ ...context, ...settings });

export interface TrackerLimits {
  /** Runner processes remembered per instance; the least recently heard are retired beyond it. */
  processesPerInstance: number;
  /** Retired processes remembered (all instances), so one heard again resumes instead of counting anew. */
  retiredProcesses: number;
  /** Instances heard of but not seeded (other namespaces, not yet reconciled, or invented by a publisher). */
  unseededInstances: number;
  /**
   * The most events a runner process can handle per second: no message counts more than this times the time
   * since that process's previous one (plus a second). Runners measure ~50k/s here, so this never binds them.
   */
  eventsPerSecondPerProcess: number;
}

export const DEFAULT_TRACKER_LIMITS: TrackerLimits = Object.freeze({
  processesPerInstance: 256,
  retiredProcesses: 8192,
  unseededInstances: 1024,
  eventsPerSecondPerProcess: 250_000,
});

export { DeliveryTracker };
