// The pure builders, without a cluster: the directory the runner Deployment's projected volume assembles is
// exactly what `dfn runner` reads (checked with the runner's own loader), names stay within Kubernetes'
// limits, and the checksum moves with what a runner reads at start and nothing else.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { FunctionInstanceSpecInput } from '../../api/function-instance.js';
import { changeConcernsInstances } from '../../operator/function/function-reconciler.js';
import {
  contentHash,
  type Revision,
  readRevision,
  revisionConfigMap,
} from '../../operator/function/revision.js';
import { type InstancePlanInput, planInstance } from '../../operator/instance/instance-plan.js';
import { boundedName, labelValue, runnerDeploymentName } from '../../operator/names.js';
import { loadRunnerConfig } from '../../runner/config-loader.js';
import { destinationFunction, functionInstance } from '../helpers/operator.js';

const CODE = 'async function onTrack(event, settings) {}\n';
const SCHEMA = [
  { name: 'endpoint', type: 'string' as const, required: true },
  { name: 'apiKey', type: 'string' as const, sensitive: true, required: true },
  { name: 'region', type: 'string' as const, default: 'eu' },
];

const fn = {
  ...destinationFunction('team', 'crm', { code: CODE, settings: SCHEMA }),
  metadata: { namespace: 'team', name: 'crm', uid: 'fn-uid' },
};
const revisionCm = revisionConfigMap(fn, 4, { code: CODE, settingsSchema: SCHEMA });
const revision = readRevision(revisionCm, fn)!;

const secrets: Record<string, V1Secret> = {
  crm: { metadata: { name: 'crm' }, data: { key: Buffer.from('s3cr3t\n').toString('base64') } },
  'dfn-runner-nats': { metadata: { name: 'dfn-runner-nats' } },
};

function input(
  spec: Partial<FunctionInstanceSpecInput> = {},
  over: Partial<InstancePlanInput> = {},
): InstancePlanInput {
  const instance = functionInstance('team', 'crm-web', {
    functionRef: { name: 'crm' },
    source: 'web',
    settings: { endpoint: 'https://crm.example' },
    secretSettings: { apiKey: { secretKeyRef: { name: 'crm', key: 'key' } } },
    ...spec,
  });
  instance.metadata.uid = 'fi-uid';
  instance.metadata.generation = 1;
  return {
    instance,
    fn,
    revisions: [revision],
    handlersOf: () => ['onTrack'],
    secret: (name) => secrets[name],
    sources: { checked: false },
    privateNetworkAllowed: false,
    env: {
      image: 'dfn:test',
      natsUrl: 'nats://nats.nats.svc:4222',
      prefix: 'dfn',
      natsAuth: { kind: 'token', token: 'runner-token' },
    },
    ...over,
  };
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** What a kubelet makes of the Deployment's projected volume, given the objects it names. */
async function materialise(plan: ReturnType<typeof planInstance>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dfn-projected-'));
  dirs.push(dir);
  const d = plan.deploy!;
  const configMaps: Record<string, V1ConfigMap> = {
    [d.configMap.metadata!.name!]: d.configMap,
    [revisionCm.metadata!.name!]: revisionCm,
  };
  const allSecrets: Record<string, V1Secret> = { ...secrets, 'dfn-runner-nats': d.natsSecret! };
  const volume = d.deployment.spec!.template.spec!.volumes!.find((v) => v.name === 'config')!;
  for (const source of volume.projected!.sources!) {
    const from: Record<string, Buffer> = {};
    if (source.configMap) {
      for (const [k, v] of Object.entries(configMaps[source.configMap.name!]!.data!))
        from[k] = Buffer.from(v);
    } else {
      for (const [k, v] of Object.entries(allSecrets[source.secret!.name!]!.data!))
        from[k] = Buffer.from(v, 'base64');
    }
    for (const item of (source.configMap ?? source.secret)!.items!) {
      const path = join(dir, item.path);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, from[item.key]!);
    }
  }
  return dir;
}

describe('the runner config directory', () => {
  it('is what `dfn runner` reads: instance, revision, settings with defaults, the secret, NATS token', async () => {
    const plan = planInstance(input());
    expect(plan.deploy).toBeDefined();
    const loaded = await loadRunnerConfig(await materialise(plan));
    expect(loaded.config.instance).toEqual({ namespace: 'team', name: 'crm-web', source: 'web' });
    expect(loaded.config.function).toMatchObject({ name: 'crm', revision: '4', settingsSchema: SCHEMA });
    expect(loaded.config.nats).toMatchObject({ url: 'nats://nats.nats.svc:4222', ensureTopology: false });
    expect(loaded.source).toBe(CODE);
    expect(loaded.settings).toEqual({ endpoint: 'https://crm.example', apiKey: 's3cr3t', region: 'eu' });
    expect(loaded.sensitiveKeys).toEqual(['apiKey']);
    expect(loaded.natsAuth).toEqual({ token: 'runner-token' });
  });

  it('takes the function limits and the instance limits together', async () => {
    const withLimits = { ...fn, spec: { ...fn.spec, limits: { timeoutMs: 1500, memoryMb: 64 } } };
    const plan = planInstance(input({ limits: { concurrency: 7 } }, { fn: withLimits }));
    const loaded = await loadRunnerConfig(await materialise(plan));
    expect(loaded.config.limits).toMatchObject({ concurrency: 7, timeoutMs: 1500, memoryMb: 64 });
    // Resources follow the isolate's heap when neither the instance nor the operator names any: the limit
    // above the sandbox process's RSS ceiling (4 × 64 + 512 MiB), so the runner, not the kernel, ends it.
    expect(plan.deploy!.deployment.spec!.template.spec!.containers[0]!.resources).toEqual({
      requests: { cpu: '100m', memory: '320Mi' },
      limits: { memory: '1024Mi' },
    });
  });

  it("takes the instance's resources, else the operator's default for runners", () => {
    const resources = (i: InstancePlanInput) =>
      planInstance(i).deploy!.deployment.spec!.template.spec!.containers[0]!.resources;
    const operatorDefault = { requests: { cpu: '1', memory: '1Gi' }, limits: { memory: '2Gi' } };
    const own = { requests: { memory: '300Mi' }, limits: { memory: '600Mi' } };
    const env = { ...input().env, resources: operatorDefault };
    expect(resources(input({}, { env }))).toEqual(operatorDefault);
    expect(resources(input({ resources: own }, { env }))).toEqual(own);
  });
});

describe('the checksum on the pod template', () => {
  const checksum = (i: InstancePlanInput) =>
    planInstance(i).deploy!.deployment.spec!.template.metadata!.annotations!['dfn.dev/config-checksum'];
  const base = checksum(input());

  it('is the same for the same world', () => {
    expect(checksum(input())).toBe(base);
  });

  it("moves with a secret value, a setting, the revision and the runners' NATS credentials", () => {
    const otherSecret = { ...secrets.crm!, data: { key: Buffer.from('rotated').toString('base64') } };
    expect(checksum(input({}, { secret: (n) => (n === 'crm' ? otherSecret : secrets[n]) }))).not.toBe(base);
    expect(checksum(input({ settings: { endpoint: 'https://other' } }))).not.toBe(base);
    const r5: Revision = { ...revision, number: 5, configMapName: 'crm-r5' };
    expect(checksum(input({}, { revisions: [r5] }))).not.toBe(base);
    const env = { ...input().env, natsAuth: { kind: 'token' as const, token: 'rotated' } };
    expect(checksum(input({}, { env }))).not.toBe(base);
  });

  it('does not move with replicas or suspend, which change the Deployment, not what a runner reads', () => {
    expect(checksum(input({ replicas: 3 }))).toBe(base);
  });
});

describe('names', () => {
  it('stay within 63 characters and distinct for long instance names', () => {
    const a = runnerDeploymentName(`${'a'.repeat(70)}-one`);
    const b = runnerDeploymentName(`${'a'.repeat(70)}-two`);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(boundedName('short', '-runner')).toBe('short-runner');
    expect(labelValue('x'.repeat(100)).length).toBeLessThanOrEqual(63);
  });

  it('a revision ConfigMap is recognised only when the function owns it', () => {
    const stranger = { ...fn, metadata: { ...fn.metadata, uid: 'other' } };
    expect(readRevision(revisionCm, stranger)).toBeUndefined();
    expect(revision).toMatchObject({ number: 4, hash: contentHash({ code: CODE, settingsSchema: SCHEMA }) });
  });
});

describe('which changes of a function reconcile its instances', () => {
  const ready = (message: string) => ({
    type: 'Ready',
    status: 'True' as const,
    reason: 'RevisionReady',
    message,
    lastTransitionTime: '2026-01-01T00:00:00Z',
  });
  const before = {
    ...fn,
    metadata: { ...fn.metadata, generation: 2, resourceVersion: '10' },
    status: { latestRevision: 4, instances: 3, delivered: 10, conditions: [ready('revision 4')] },
  };

  it('a new function, and its spec, concern them', () => {
    expect(changeConcernsInstances(before, undefined)).toBe(true);
    const edited = { ...before, metadata: { ...before.metadata, generation: 3 }, spec: { code: CODE + ' ' } };
    expect(changeConcernsInstances(edited, before)).toBe(true);
  });

  it('only the sums of its instances (count, delivery) do not: each instance write would reconcile all', () => {
    const summed = {
      ...before,
      metadata: { ...before.metadata, resourceVersion: '11' },
      status: { ...before.status, instances: 4, delivered: 500, retrying: 2, failed: 1 },
    };
    expect(changeConcernsInstances(summed, before)).toBe(false);
  });

  it('its Ready condition does, even when only its message moves (instances quote it)', () => {
    const broken = {
      ...before,
      status: { ...before.status, conditions: [ready('revision 4 (code edited)')] },
    };
    expect(changeConcernsInstances(broken, before)).toBe(true);
    const newRevision = { ...before, status: { ...before.status, latestRevision: 5 } };
    expect(changeConcernsInstances(newRevision, before)).toBe(true);
  });

  it('its deletion does', () => {
    const deleting = { ...before, metadata: { ...before.metadata, deletionTimestamp: new Date() } };
    expect(changeConcernsInstances(deleting, before)).toBe(true);
  });
});
