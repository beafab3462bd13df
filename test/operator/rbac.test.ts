// The operator's documented RBAC (operator/rbac.ts) is enough: an operator holding only a ServiceAccount
// token bound to exactly those rules elects itself, reconciles a function and an instance (revision, config,
// runner NATS Secret, Deployment, consumer, status) and finalizes a deletion. It can do little else.

import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operator } from '../../operator/index.js';
import { INSTANCE_NAMESPACE_RULES, LEASE_RULES, policyRule, writeKeysRules } from '../../operator/index.js';
import { useNamespace } from '../helpers/kube.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  apply,
  destinationFunction,
  functionInstance,
  read,
  remove,
  testOperator,
  waitForCondition,
} from '../helpers/operator.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('op-rbac');
let nats: NatsServer;
let operator: Operator;
let operatorKc: KubeConfig;

beforeAll(async () => {
  nats = await NatsServer.start();
  const core = ns.kc.makeApiClient(CoreV1Api);
  const rbac = ns.kc.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({
    namespace: ns.name,
    body: { metadata: { name: 'dfn-operator' } },
  });
  await rbac.createNamespacedRole({
    namespace: ns.name,
    body: {
      metadata: { name: 'dfn-operator' },
      rules: [...INSTANCE_NAMESPACE_RULES, ...LEASE_RULES, ...writeKeysRules('write-keys')].map(policyRule),
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: ns.name,
    body: {
      metadata: { name: 'dfn-operator' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'dfn-operator' },
      subjects: [{ kind: 'ServiceAccount', name: 'dfn-operator', namespace: ns.name }],
    },
  });
  await core.createNamespacedSecret({
    namespace: ns.name,
    body: { metadata: { name: 'write-keys' }, stringData: { 'write-keys.yaml': 'k1: web\n' } },
  });
  await core.createNamespacedSecret({
    namespace: ns.name,
    body: { metadata: { name: 'crm' }, stringData: { key: 'v' } },
  });
  const token = await core.createNamespacedServiceAccountToken({
    name: 'dfn-operator',
    namespace: ns.name,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const cluster = ns.kc.getCurrentCluster()!;
  operatorKc = new KubeConfig();
  operatorKc.loadFromOptions({
    clusters: [{ name: 'c', server: cluster.server, caData: cluster.caData }],
    users: [{ name: 'dfn-operator', token: token.status!.token }],
    contexts: [{ name: 'c', cluster: 'c', user: 'dfn-operator' }],
    currentContext: 'c',
  });
  operator = testOperator({
    kc: operatorKc,
    namespace: ns.name,
    natsUrl: nats.url,
    runner: { image: 'dfn:test', natsUrl: nats.url, natsAuth: { kind: 'token', token: 'runner-token' } },
    writeKeys: { namespace: ns.name, name: 'write-keys', key: 'write-keys.yaml' },
    leaderElection: {
      namespace: ns.name,
      name: 'dfn-operator',
      identity: 'rbac-test',
      leaseDurationMs: 5000,
      renewDeadlineMs: 3000,
      retryPeriodMs: 300,
    },
  });
}, 120_000);

afterAll(async () => {
  await operator?.stop();
  await nats?.dispose();
});

describe('an operator with exactly the documented RBAC', () => {
  it('reconciles a function and an instance completely', async () => {
    await apply(
      ns.kc,
      destinationFunction(ns.name, 'crm', {
        code: 'async function onTrack() {}',
        settings: [{ name: 'key', type: 'string', sensitive: true }],
      }),
    );
    await apply(
      ns.kc,
      functionInstance(ns.name, 'crm-web', {
        functionRef: { name: 'crm' },
        source: 'web',
        secretSettings: { key: { secretKeyRef: { name: 'crm', key: 'key' } } },
      }),
    );
    await waitForCondition(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'crm',
      'Ready',
      'True',
      'RevisionReady',
      90_000,
    );
    await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'crm-web',
      'ConsumerReady',
      'True',
      undefined,
      90_000,
    );
    const secret = await ns.kc
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: 'dfn-runner-nats', namespace: ns.name });
    expect(Buffer.from(secret.data!.token!, 'base64').toString()).toBe('runner-token');
    expect(operator.role).toBe('leading');
  });

  it('finalizes a deletion', async () => {
    await remove(ns.kc, 'FunctionInstance', ns.name, 'crm-web');
    await waitFor(
      'the instance to be gone',
      async () => !(await read(ns.kc, 'FunctionInstance', ns.name, 'crm-web')),
      60_000,
    );
    await waitFor('the runner NATS Secret to be gone with the last instance', () =>
      ns.kc
        .makeApiClient(CoreV1Api)
        .readNamespacedSecret({ name: 'dfn-runner-nats', namespace: ns.name })
        .then(
          () => false,
          () => true,
        ),
    );
  });

  it('and no more: it cannot read Pods nor anything outside its namespace', async () => {
    const core = operatorKc.makeApiClient(CoreV1Api);
    await expect(core.listNamespacedPod({ namespace: ns.name })).rejects.toMatchObject({ code: 403 });
    await expect(core.listNamespacedSecret({ namespace: 'default' })).rejects.toMatchObject({ code: 403 });
  });
});
