// Delivery status of FunctionInstances: runner stats over NATS and the instances' consumers, turned into what
// the operator writes into `.status`. The seam with the operator core (see briefs' contract-delivery.md).

import type { JetStreamManager, NatsConnection } from 'nats';
import type { HealthPolicy } from '../../api/delivery-status.js';
import type { Topology } from '../../api/jetstream.js';
import type { Logger } from '../../lib/telemetry.js';

export interface InstanceKey {
  namespace: string;
  name: string;
}

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

export interface DeliveryTrackerOptions {
  nc: NatsConnection;
  topology: Topology;
  jsm: JetStreamManager;
  log: Logger;
  /** Called (debounced by the tracker) when an instance's InstanceDelivery changed. */
  onChange: (key: InstanceKey) => void;
  /** How often backlog and retrying are read from JetStream (ms). Default 5000. */
  pollIntervalMs?: number;
  /** Changes within this long are reported once (ms). Default 250. */
  debounceMs?: number;
  /** When Healthy flips. Default DEFAULT_HEALTH_POLICY (api/delivery-status.ts). */
  health?: Partial<HealthPolicy>;
  /** Bounds on what the stats subjects can make the tracker hold. Defaults in DEFAULT_TRACKER_LIMITS. */
  limits?: Partial<TrackerLimits>;
}

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

export { DeliveryTracker } from './tracker.js';
