// The runner Deployment of an instance, a pure builder: non-root, read-only root filesystem, no
// service-account token, probes on the runner's endpoints, the config directory as one projected volume, and
// a checksum annotation on the pod template so a new revision, config or Secret value rolls the pods.

import type {
  V1Deployment,
  V1ProjectedVolumeSource,
  V1ResourceRequirements,
  V1VolumeProjection,
} from '@kubernetes/client-node';
import type { FunctionInstance, FunctionInstanceSpec } from '../../api/function-instance.js';
import { RUNNER_CONFIG_FILES, type RunnerConfig } from '../../api/runner-config.js';
import { processLimits } from '../../sandbox/index.js';
import { ownerReference, REVISION_KEYS, type Revision } from '../function/revision.js';
import {
  ANNOTATIONS,
  LABELS,
  RUNNER_NATS_SECRET,
  runnerConfigMapName,
  runnerDeploymentName,
} from '../names.js';
import {
  NATS_FILES,
  RUNNER_CONFIG_DIR,
  RUNNER_HTTP_PORT,
  type RunnerEnvironment,
  runnerLabels,
} from './runner-config.js';

/** The unprivileged user of the dfn image (distroless "nonroot"). */
export const RUNNER_UID = 65532;

export interface RunnerDeploymentInput {
  instance: FunctionInstance;
  spec: FunctionInstanceSpec;
  config: RunnerConfig;
  revision: Revision;
  env: RunnerEnvironment;
  /** sha256 of everything the runner reads at start (config, code, secret values, NATS credentials). */
  checksum: string;
}

/** What a runner's own process (NATS, acks, HTTP) holds beside its sandbox process, with headroom (MiB). */
const RUNNER_PROCESS_MB = 256;

/**
 * Requests and limits when neither the instance nor the operator gives any. The request is the isolate's
 * heap plus the two Node processes at rest; the limit sits above the RSS ceiling at which the runner kills
 * its sandbox process itself, so a hostile function's memory ends in that process (its events quarantined,
 * the runner up) and never in a kernel OOM kill of the whole container.
 */
export function defaultResources(memoryMb: number): V1ResourceRequirements {
  const sandbox = processLimits({ limits: { memoryMb } });
  return {
    requests: { cpu: '100m', memory: `${memoryMb + RUNNER_PROCESS_MB}Mi` },
    limits: { memory: `${sandbox.rssMb + RUNNER_PROCESS_MB}Mi` },
  };
}

/** Secret keys in the config directory: secrets/<setting> for each sensitive setting, one source per Secret. */
function secretProjections(spec: FunctionInstanceSpec): V1VolumeProjection[] {
  const bySecret = new Map<string, { key: string; path: string }[]>();
  for (const [setting, { secretKeyRef }] of Object.entries(spec.secretSettings ?? {}).sort()) {
    const items = bySecret.get(secretKeyRef.name) ?? [];
    items.push({ key: secretKeyRef.key, path: `${RUNNER_CONFIG_FILES.secrets}/${setting}` });
    bySecret.set(secretKeyRef.name, items);
  }
  return [...bySecret].map(([name, items]) => ({ secret: { name, items } }));
}

function natsProjection(env: RunnerEnvironment): V1VolumeProjection[] {
  const auth = env.natsAuth;
  if (auth.kind === 'none') return [];
  const file = auth.kind === 'user' ? NATS_FILES.password : NATS_FILES[auth.kind];
  return [{ secret: { name: RUNNER_NATS_SECRET, items: [{ key: file, path: `nats/${file}` }] } }];
}

export function runnerDeployment(input: RunnerDeploymentInput): V1Deployment {
  const { instance, spec, config, revision, env, checksum } = input;
  const name = instance.metadata.name!;
  const labels = runnerLabels(instance, spec.functionRef.name);
  const selector = {
    [LABELS.functionInstance]: labels[LABELS.functionInstance]!,
    [LABELS.name]: 'dfn-runner',
  };
  const projected: V1ProjectedVolumeSource = {
    // Read by the runner's user only: secret values are in this directory.
    defaultMode: 0o440,
    sources: [
      {
        configMap: {
          name: runnerConfigMapName(name),
          items: [
            { key: RUNNER_CONFIG_FILES.config, path: RUNNER_CONFIG_FILES.config },
            { key: RUNNER_CONFIG_FILES.settings, path: RUNNER_CONFIG_FILES.settings },
          ],
        },
      },
      {
        configMap: {
          name: revision.configMapName,
          items: [{ key: REVISION_KEYS.code, path: RUNNER_CONFIG_FILES.function }],
        },
      },
      ...secretProjections(spec),
      ...natsProjection(env),
    ],
  };
  const graceSeconds = Math.ceil(config.shutdown.gracePeriodMs / 1000) + 10;
  const memoryMb = config.limits.memoryMb ?? 128;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: runnerDeploymentName(name),
      namespace: instance.metadata.namespace!,
      labels,
      annotations: { [LABELS.revision]: String(revision.number) },
      ownerReferences: [ownerReference(instance)],
    },
    spec: {
      replicas: spec.suspend ? 0 : spec.replicas,
      selector: { matchLabels: selector },
      // A new pod is ready before an old one stops: delivery never pauses during a roll.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      revisionHistoryLimit: 3,
      progressDeadlineSeconds: env.progressDeadlineSeconds ?? 600,
      template: {
        metadata: {
          labels,
          annotations: {
            [ANNOTATIONS.configChecksum]: checksum,
            [LABELS.revision]: String(revision.number),
          },
        },
        spec: {
          // Runners hold no Kubernetes credentials: user code must reach nothing that could use them.
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: graceSeconds,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: RUNNER_UID,
            runAsGroup: RUNNER_UID,
            fsGroup: RUNNER_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'runner',
              image: env.image,
              imagePullPolicy: env.imagePullPolicy ?? 'IfNotPresent',
              args: ['runner', '--config', RUNNER_CONFIG_DIR],
              env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
              ports: [{ name: 'http', containerPort: RUNNER_HTTP_PORT, protocol: 'TCP' }],
              startupProbe: {
                httpGet: { path: '/healthz', port: 'http' },
                periodSeconds: 2,
                failureThreshold: 30,
              },
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'http' },
                periodSeconds: 10,
                failureThreshold: 3,
              },
              readinessProbe: {
                httpGet: { path: '/readyz', port: 'http' },
                periodSeconds: 5,
                failureThreshold: 2,
              },
              resources:
                (spec.resources as V1ResourceRequirements | undefined) ??
                env.resources ??
                defaultResources(memoryMb),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'config', mountPath: RUNNER_CONFIG_DIR, readOnly: true },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'config', projected: projected },
            { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
          ],
        },
      },
    },
  };
}
