// The operator in a test: an in-process Operator on the shared control plane, scoped to the test file's
// namespace, and small helpers to apply our kinds and wait for their status as a user would see it.

import {
  CustomObjectsApi,
  type KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
} from '@kubernetes/client-node';
import type {
  DestinationFunction,
  DestinationFunctionSpecInput,
  DestinationFunctionStatus,
} from '../../api/destination-function.js';
import type {
  FunctionInstance,
  FunctionInstanceSpecInput,
  FunctionInstanceStatus,
} from '../../api/function-instance.js';
import { API_GROUP, API_GROUP_VERSION, API_VERSION, type StatusCondition } from '../../api/kube-types.js';
import { silentProcessLogger } from '../../lib/telemetry.js';
import { Operator, type OperatorOptions } from '../../operator/index.js';
import { waitFor } from './wait.js';

export const TEST_IMAGE = 'ghcr.io/dfn-dev/dfn:test';

export type TestOperatorOptions = Partial<OperatorOptions> & {
  kc: KubeConfig;
  namespace: string;
  natsUrl: string;
};

/** An operator reconciling one namespace, without leader election unless asked; stopped by the caller. */
export function testOperator(options: TestOperatorOptions): Operator {
  const { kc, namespace, natsUrl, ...rest } = options;
  const operator = new Operator({
    kc,
    namespaces: [namespace],
    nats: { servers: natsUrl, reconnectTimeWait: 250 },
    prefix: 'dfn',
    streamLimits: { storage: 'memory' },
    runner: { image: TEST_IMAGE, natsUrl, natsAuth: { kind: 'none' }, progressDeadlineSeconds: 600 },
    allowPrivateNetwork: [],
    statusIntervalMs: 500,
    baseBackoffMs: 200,
    maxBackoffMs: 5000,
    log: silentProcessLogger(),
    ...rest,
  });
  operator.start();
  return operator;
}

export const destinationFunction = (
  namespace: string,
  name: string,
  spec: DestinationFunctionSpecInput,
): DestinationFunction => ({
  apiVersion: API_GROUP_VERSION,
  kind: 'DestinationFunction',
  metadata: { namespace, name },
  spec,
});

export const functionInstance = (
  namespace: string,
  name: string,
  spec: FunctionInstanceSpecInput,
): FunctionInstance => ({
  apiVersion: API_GROUP_VERSION,
  kind: 'FunctionInstance',
  metadata: { namespace, name },
  spec,
});

/** Server-side apply as a user would (`kubectl apply --server-side`): the object's spec becomes this. */
export async function apply(
  kc: KubeConfig,
  obj: DestinationFunction | FunctionInstance | object,
): Promise<void> {
  await KubernetesObjectApi.makeApiClient(kc).patch(
    obj as never,
    undefined,
    undefined,
    'test-user',
    true,
    PatchStrategy.ServerSideApply,
  );
}

const PLURALS = {
  DestinationFunction: 'destinationfunctions',
  FunctionInstance: 'functioninstances',
} as const;
type Kind = keyof typeof PLURALS;

export async function read<K extends Kind>(
  kc: KubeConfig,
  kind: K,
  namespace: string,
  name: string,
): Promise<(K extends 'DestinationFunction' ? DestinationFunction : FunctionInstance) | undefined> {
  try {
    return (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      namespace,
      plural: PLURALS[kind],
      name,
    })) as never;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

export async function remove(kc: KubeConfig, kind: Kind, namespace: string, name: string): Promise<void> {
  await kc.makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({
    group: API_GROUP,
    version: API_VERSION,
    namespace,
    plural: PLURALS[kind],
    name,
  });
}

type AnyStatus = DestinationFunctionStatus & FunctionInstanceStatus;

/** Waits until the object's status satisfies `check`; the failure message shows the last status seen. */
export async function waitForStatus(
  kc: KubeConfig,
  kind: Kind,
  namespace: string,
  name: string,
  what: string,
  check: (status: AnyStatus, obj: DestinationFunction | FunctionInstance) => boolean,
  timeoutMs = 60_000,
): Promise<AnyStatus> {
  let last: unknown;
  const obj = await waitFor(
    () => `${kind} ${name}: ${what} (last status: ${JSON.stringify(last)})`,
    async () => {
      const o = await read(kc, kind, namespace, name);
      last = o?.status;
      return o && check((o.status ?? {}) as AnyStatus, o) ? o : undefined;
    },
    timeoutMs,
    100,
  );
  return (obj.status ?? {}) as AnyStatus;
}

export const condition = (status: { conditions?: StatusCondition[] }, type: string) =>
  status.conditions?.find((c) => c.type === type);

/** Waits for a condition of the given status (and reason, if given). */
export function waitForCondition(
  kc: KubeConfig,
  kind: Kind,
  namespace: string,
  name: string,
  type: string,
  status: 'True' | 'False' | 'Unknown',
  reason?: string,
  timeoutMs?: number,
): Promise<AnyStatus> {
  return waitForStatus(
    kc,
    kind,
    namespace,
    name,
    `${type}=${status}${reason ? ` (${reason})` : ''}`,
    (s, o) => {
      const c = condition(s, type);
      return (
        c?.status === status &&
        (reason === undefined || c.reason === reason) &&
        s.observedGeneration === o.metadata.generation
      );
    },
    timeoutMs,
  );
}
