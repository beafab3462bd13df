// The operator's RBAC, the least it needs, defined once: docs/operator.md lists it, the chart's templates carry
// it (test/chart/rbac.test.ts compares them), and test/operator/rbac.test.ts runs an operator with exactly these rules.

import type { V1PolicyRule } from '@kubernetes/client-node';
import { API_GROUP } from '../api/kube-types.js';

export interface OperatorRule extends V1PolicyRule {
  /** Why the operator needs it. */
  why: string;
}

/** Where instances live: a ClusterRole for all namespaces, or a Role in each watched namespace. */
export const INSTANCE_NAMESPACE_RULES: OperatorRule[] = [
  {
    apiGroups: [API_GROUP],
    resources: ['destinationfunctions', 'functioninstances'],
    verbs: ['get', 'list', 'watch', 'patch'],
    why: 'watch both kinds; patch adds and removes their finalizers',
  },
  {
    apiGroups: [API_GROUP],
    resources: ['destinationfunctions/status', 'functioninstances/status'],
    verbs: ['patch'],
    why: 'the one status writer',
  },
  {
    apiGroups: [API_GROUP],
    resources: ['destinationfunctions/finalizers', 'functioninstances/finalizers'],
    verbs: ['update'],
    why: 'owner references with blockOwnerDeletion (where OwnerReferencesPermissionEnforcement is on)',
  },
  {
    apiGroups: [''],
    resources: ['configmaps'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'revision ConfigMaps (create, prune), runner config (apply), code from spec.codeFrom (read)',
  },
  {
    apiGroups: [''],
    resources: ['secrets'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'Secrets named by secretSettings (read: existence, and a checksum of their values); the runner NATS Secret (apply, delete)',
  },
  {
    apiGroups: ['apps'],
    resources: ['deployments'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'runner Deployments (apply; delete when an instance cannot run)',
  },
];

/** In the operator's own namespace: its leader-election Lease. */
export const LEASE_RULES: OperatorRule[] = [
  {
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    verbs: ['get', 'create', 'update'],
    why: 'leader election: one operator reconciles at a time',
  },
];

/** In the gateway's namespace: the write-keys Secret only, to know the sources. */
export const writeKeysRules = (secretName: string): OperatorRule[] => [
  {
    apiGroups: [''],
    resources: ['secrets'],
    resourceNames: [secretName],
    verbs: ['get', 'list', 'watch'],
    why: "the gateway's write keys: which sources exist (SourceUnknown)",
  },
];

/** A rule without its explanation, as Kubernetes takes it. */
export const policyRule = ({ why: _why, ...rule }: OperatorRule): V1PolicyRule => rule;

/** The rules as a Markdown table (docs/operator.md carries it; a test keeps the two equal). */
export function rbacTable(): string {
  const rows = (scope: string, rules: OperatorRule[]) =>
    rules.map(
      (r) =>
        `| ${scope} | ${r.apiGroups!.map((g) => `\`${g || 'core'}\``).join(', ')} | ${r.resources!.map((x) => `\`${x}\``).join(', ')}${r.resourceNames ? ` (only \`${r.resourceNames.join(', ')}\`)` : ''} | ${r.verbs.join(', ')} | ${r.why} |`,
    );
  return [
    '| Where | API group | Resources | Verbs | Why |',
    '| --- | --- | --- | --- | --- |',
    ...rows(
      'namespaces with instances (ClusterRole, or a Role per watched namespace)',
      INSTANCE_NAMESPACE_RULES,
    ),
    ...rows("the operator's namespace (Role)", LEASE_RULES),
    ...rows("the gateway's namespace (Role)", writeKeysRules('<write-keys Secret>')),
  ].join('\n');
}
