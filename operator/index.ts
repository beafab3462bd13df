// Public entry of the operator: the Operator (leader election, watches, the two reconcilers, status from
// delivery), its HTTP probes, and the RBAC it needs. `dfn operator` (cli/commands/operator.ts) runs it.

export { type DeliveryTrackerSettings, deliveryTracker } from './delivery/index.js';
export type { DeliveryContext, DeliverySource, InstanceDelivery } from './delivery-seam.js';
export { startOperatorHttp } from './http.js';
export type { RunnerEnvironment, RunnerNatsAuth } from './instance/runner-config.js';
export { type OperatorMetrics, operatorMetrics } from './metrics.js';
export {
  type LeaderElectionConfig,
  Operator,
  type OperatorOptions,
  type OperatorRole,
} from './operator.js';
export { INSTANCE_NAMESPACE_RULES, LEASE_RULES, policyRule, rbacTable, writeKeysRules } from './rbac.js';
export type { WriteKeysSecretRef } from './sources.js';
