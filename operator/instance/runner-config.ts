// The runner config directory of an instance (api/runner-config.ts is the contract): config.yaml with every
// default applied, settings.json, and where the projected volume puts the function, secrets and NATS files.

import type { V1ConfigMap, V1ResourceRequirements } from '@kubernetes/client-node';
import type { DestinationFunctionSpec } from '../../api/destination-function.js';
import type { FunctionInstance, FunctionInstanceSpec } from '../../api/function-instance.js';
import {
  parseRunnerConfig,
  RUNNER_CONFIG_API_VERSION,
  RUNNER_CONFIG_FILES,
  RUNNER_CONFIG_KIND,
  type RunnerConfig,
  type RunnerConfigInput,
  renderRunnerConfig,
} from '../../api/runner-config.js';
import { BoundedMap } from '../delivery/bounded-map.js';
import type { Revision } from '../function/revision.js';
import { ownerReference } from '../function/revision.js';
import { LABELS, labelValue, MANAGED_BY, runnerConfigMapName } from '../names.js';

/** How runners authenticate to NATS: the operator keeps the values in each namespace's runner NATS Secret. */
export type RunnerNatsAuth =
  | { kind: 'none' }
  | { kind: 'token'; token: string }
  | { kind: 'creds'; creds: string }
  | { kind: 'user'; user: string; password: string };

/** Files of the runner NATS Secret, also their paths under the config directory's nats/. */
export const NATS_FILES = { token: 'token', creds: 'creds', password: 'password' } as const;

/** What the operator was told about every runner it deploys. */
export interface RunnerEnvironment {
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  natsUrl: string | string[];
  prefix: string;
  natsAuth: RunnerNatsAuth;
  /** How often runners publish stats (ms); the operator's status follows at that pace. */
  statsIntervalMs?: number;
  /** Seconds a rollout may take before its Deployment reports ProgressDeadlineExceeded. */
  progressDeadlineSeconds?: number;
  /** Requests and limits of instances that give none (the chart's runner.resources); else sized from memoryMb. */
  resources?: V1ResourceRequirements;
}

/** The container's port for /healthz, /readyz and /metrics (config.yaml http.port). */
export const RUNNER_HTTP_PORT = 8080;
/** Where the config directory is mounted in the runner container. */
export const RUNNER_CONFIG_DIR = '/etc/dfn/runner';

function natsAuthFields(auth: RunnerNatsAuth) {
  const file = (name: string) => `nats/${name}`;
  switch (auth.kind) {
    case 'none':
      return {};
    case 'token':
      return { tokenFile: file(NATS_FILES.token) };
    case 'creds':
      return { credentialsFile: file(NATS_FILES.creds) };
    case 'user':
      return { user: auth.user, passwordFile: file(NATS_FILES.password) };
  }
}

/** config.yaml of an instance: its spec, the revision's function, the operator's NATS; defaults applied. */
export function runnerConfig(
  instance: FunctionInstance,
  spec: FunctionInstanceSpec,
  fnSpec: DestinationFunctionSpec,
  revision: Revision,
  env: RunnerEnvironment,
): RunnerConfig {
  return parsedConfig({
    apiVersion: RUNNER_CONFIG_API_VERSION,
    kind: RUNNER_CONFIG_KIND,
    instance: { namespace: instance.metadata.namespace!, name: instance.metadata.name!, source: spec.source },
    function: {
      name: spec.functionRef.name,
      revision: String(revision.number),
      settingsSchema: revision.settingsSchema,
    },
    // The operator owns streams and consumers; the runner waits for its consumer.
    nats: { url: env.natsUrl, prefix: env.prefix, ensureTopology: false, ...natsAuthFields(env.natsAuth) },
    ...(spec.consumer ? { consumer: spec.consumer } : {}),
    ...(spec.filters ? { filters: spec.filters } : {}),
    ...(spec.dataControl ? { dataControl: spec.dataControl } : {}),
    ...(spec.batching ? { batching: spec.batching } : {}),
    ...(spec.retry ? { retry: spec.retry } : {}),
    limits: { ...(spec.limits ?? {}), ...(fnSpec.limits ?? {}) },
    ...(spec.network ? { network: spec.network } : {}),
    ...(env.statsIntervalMs ? { stats: { intervalMs: env.statsIntervalMs } } : {}),
    http: { host: '0.0.0.0', port: RUNNER_HTTP_PORT },
  });
}

/**
 * Parsed documents by their input, and config.yaml by parsed document: every reconcile builds its instance's
 * config, but it changes only with a spec, revision or operator flag, and validating and rendering it anew
 * each time was a third of the operator's CPU while 500 new instances converged (docs/operator.md, Benchmark).
 * Bounded, so instances come and go without the cache growing; a miss only costs the work it saves.
 */
const parsedConfigs = new BoundedMap<string, RunnerConfig>(4096);
const renderedConfigs = new WeakMap<RunnerConfig, string>();

function parsedConfig(doc: RunnerConfigInput): RunnerConfig {
  const key = JSON.stringify(doc);
  let config = parsedConfigs.get(key);
  if (!config) {
    // Frozen: the same object serves every later reconcile, so nobody may change it for the others.
    config = deepFreeze(parseRunnerConfig(doc));
    parsedConfigs.set(key, config);
  }
  return config;
}

function renderedConfig(config: RunnerConfig): string {
  let text = renderedConfigs.get(config);
  if (text === undefined) {
    text = renderRunnerConfig(config);
    if (Object.isFrozen(config)) renderedConfigs.set(config, text);
  }
  return text;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export const runnerLabels = (instance: FunctionInstance, fnName: string) => ({
  [LABELS.name]: 'dfn-runner',
  [LABELS.instance]: labelValue(instance.metadata.name!),
  [LABELS.component]: 'runner',
  [LABELS.partOf]: 'dfn',
  [LABELS.managedBy]: MANAGED_BY,
  [LABELS.functionInstance]: labelValue(instance.metadata.name!),
  [LABELS.function]: labelValue(fnName),
});

/** The instance's own part of the config directory: config.yaml and settings.json. */
export function runnerConfigMap(
  instance: FunctionInstance,
  config: RunnerConfig,
  settings: Record<string, unknown>,
): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: runnerConfigMapName(instance.metadata.name!),
      namespace: instance.metadata.namespace!,
      labels: runnerLabels(instance, config.function.name ?? ''),
      ownerReferences: [ownerReference(instance)],
    },
    data: {
      [RUNNER_CONFIG_FILES.config]: renderedConfig(config),
      [RUNNER_CONFIG_FILES.settings]: `${JSON.stringify(settings, null, 2)}\n`,
    },
  };
}
