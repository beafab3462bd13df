// The two reconcilers against the real control plane and a real nats-server (no kubelet: runner pods stay
// Pending here, so "ready" is judged where it can be, with replicas 0). What a user applies becomes the
// expected objects and consumer; what they change rolls exactly what it should.

import { AppsV1Api, CoreV1Api, type V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { consumerName, topology } from '../../api/jetstream.js';
import type { Operator } from '../../operator/index.js';
import { kubectl, useNamespace } from '../helpers/kube.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  apply,
  condition,
  destinationFunction,
  functionInstance,
  read,
  remove,
  TEST_IMAGE,
  testOperator,
  waitForCondition,
} from '../helpers/operator.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('op-reconcile');
let nats: NatsServer;
let operator: Operator;
const t = topology('dfn');

const CODE = `
async function onTrack(event, settings) {
  await fetch(settings.endpoint, { method: 'POST', body: JSON.stringify(event) });
}
async function onIdentify(event, settings) {}
`;
const SETTINGS = [
  { name: 'endpoint', type: 'string' as const, required: true },
  { name: 'apiKey', type: 'string' as const, sensitive: true },
];

beforeAll(async () => {
  nats = await NatsServer.start();
  operator = testOperator({ kc: ns.kc, namespace: ns.name, natsUrl: nats.url });
}, 60_000);

afterAll(async () => {
  await operator?.stop();
  await nats?.dispose();
});

const core = () => ns.kc.makeApiClient(CoreV1Api);
const apps = () => ns.kc.makeApiClient(AppsV1Api);

async function deployment(name: string): Promise<V1Deployment | undefined> {
  return apps()
    .readNamespacedDeployment({ name, namespace: ns.name })
    .catch(() => undefined);
}

async function consumerInfo(instance: string) {
  const nc = await nats.connect();
  try {
    const jsm = await nc.jetstreamManager();
    return await jsm.consumers
      .info(t.eventsStream, consumerName({ namespace: ns.name, name: instance }))
      .catch(() => undefined);
  } finally {
    await nc.close();
  }
}

describe('a function and an instance', () => {
  beforeAll(async () => {
    await core().createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'crm' }, stringData: { key: 'secret-1' } },
    });
    await apply(ns.kc, destinationFunction(ns.name, 'crm', { code: CODE, settings: SETTINGS }));
    await apply(
      ns.kc,
      functionInstance(ns.name, 'crm-web', {
        functionRef: { name: 'crm' },
        source: 'web',
        settings: { endpoint: 'https://crm.example/events' },
        secretSettings: { apiKey: { secretKeyRef: { name: 'crm', key: 'key' } } },
        replicas: 2,
      }),
    );
  });

  it('becomes revision 1 in an immutable ConfigMap owned by the function, with its handlers in status', async () => {
    const status = await waitForCondition(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'crm',
      'Ready',
      'True',
      'RevisionReady',
    );
    expect(status.latestRevision).toBe(1);
    expect(status.handlers).toEqual(['onIdentify', 'onTrack']);
    expect(condition(status, 'CodeValid')).toMatchObject({ status: 'True', reason: 'CodeLoaded' });
    const cm = await core().readNamespacedConfigMap({ name: 'crm-r1', namespace: ns.name });
    expect(cm.immutable).toBe(true);
    expect(cm.data?.['function.js']).toBe(CODE);
    expect(JSON.parse(cm.data!['settings-schema.json']!)).toEqual(SETTINGS);
    const fn = await read(ns.kc, 'DestinationFunction', ns.name, 'crm');
    expect(cm.metadata?.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'DestinationFunction',
        name: 'crm',
        uid: fn!.metadata.uid,
        controller: true,
      }),
    ]);
    expect(fn!.metadata.finalizers).toContain('dfn.dev/in-use');
  });

  it('gets a runner config the runner contract accepts, defaults applied', async () => {
    const cm = await waitFor('runner config', () =>
      core()
        .readNamespacedConfigMap({ name: 'crm-web-runner-config', namespace: ns.name })
        .catch(() => undefined),
    );
    const config = parse(cm.data!['config.yaml']!);
    expect(config).toMatchObject({
      kind: 'RunnerConfig',
      instance: { namespace: ns.name, name: 'crm-web', source: 'web' },
      function: { name: 'crm', revision: '1', settingsSchema: SETTINGS },
      nats: { url: nats.url, prefix: 'dfn', ensureTopology: false },
      retry: { maxAttempts: 10, initialDelayMs: 30_000 },
      limits: { concurrency: 200 },
      http: { port: 8080 },
    });
    expect(JSON.parse(cm.data!['settings.json']!)).toEqual({ endpoint: 'https://crm.example/events' });
    // The secret value is not in the ConfigMap: it is projected from the Secret.
    expect(JSON.stringify(cm.data)).not.toContain('secret-1');
  });

  it('gets a hardened runner Deployment mounting config, code and the Secret key', async () => {
    const d = await waitFor('runner Deployment', () => deployment('crm-web-runner'));
    expect(d.spec?.replicas).toBe(2);
    const pod = d.spec!.template.spec!;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    const c = pod.containers[0]!;
    expect(c.image).toBe(TEST_IMAGE);
    expect(c.args).toEqual(['runner', '--config', '/etc/dfn/runner']);
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    const sources = pod.volumes!.find((v) => v.name === 'config')!.projected!.sources!;
    expect(sources).toEqual([
      {
        configMap: {
          name: 'crm-web-runner-config',
          items: [
            { key: 'config.yaml', path: 'config.yaml' },
            { key: 'settings.json', path: 'settings.json' },
          ],
        },
      },
      { configMap: { name: 'crm-r1', items: [{ key: 'function.js', path: 'function.js' }] } },
      { secret: { name: 'crm', items: [{ key: 'key', path: 'secrets/apiKey' }] } },
    ]);
    expect(d.spec!.template.metadata!.annotations!['dfn.dev/config-checksum']).toMatch(/^[0-9a-f]{64}$/);
    expect(d.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'FunctionInstance', name: 'crm-web' });
  });

  it("creates the instance's consumer, filtered to its source and the types the function handles", async () => {
    const info = await waitFor('consumer', () => consumerInfo('crm-web'));
    expect(info.config.filter_subjects).toEqual([
      'dfn.events.web.identify',
      'dfn.events.web.track',
      `dfn.replay.${ns.name}.crm-web`,
      `dfn.retry.${ns.name}.crm-web`,
    ]);
    const fi = await read(ns.kc, 'FunctionInstance', ns.name, 'crm-web');
    expect(fi!.metadata.finalizers).toContain('dfn.dev/consumer');
  });

  it('reports what it can judge: settings valid, consumer ready, runners still rolling out', async () => {
    const status = await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'crm-web',
      'ConsumerReady',
      'True',
    );
    expect(status.revision).toBe(1);
    expect(condition(status, 'SettingsValid')).toMatchObject({ status: 'True' });
    // No kubelet in this file: the pods stay Pending, so the rollout is honestly not done.
    expect(condition(status, 'RunnerReady')).toMatchObject({
      status: 'Unknown',
      reason: 'RolloutInProgress',
    });
    expect(condition(status, 'Ready')).toMatchObject({ status: 'Unknown', reason: 'RolloutInProgress' });
  });

  it('shows READY and REVISION in kubectl get', async () => {
    // The function counts its instances when it is reconciled after them: wait for that write.
    const functionRow = /destinationfunction\.dfn\.dev\/crm\s+True\s+1\s+\["onIdentify","onTrack"\]\s+1/;
    const run = await waitFor('the function to count its instance in kubectl get', async () => {
      const r = await kubectl(['get', 'destfn,fi'], { namespace: ns.name });
      return r.code === 0 && functionRow.test(r.stdout) ? r : undefined;
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /destinationfunction\.dfn\.dev\/crm\s+True\s+1\s+\["onIdentify","onTrack"\]\s+1/,
    );
    expect(run.stdout).toMatch(/functioninstance\.dfn\.dev\/crm-web\s+crm\s+1\s+Unknown/);
  });
});

describe('deletion', () => {
  it('of a function still in use waits, and says so in its status', async () => {
    await remove(ns.kc, 'DestinationFunction', ns.name, 'crm');
    const status = await waitForCondition(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'crm',
      'Ready',
      'False',
      'InUse',
    );
    expect(condition(status, 'Ready')!.message).toContain('crm-web');
    const fn = await read(ns.kc, 'DestinationFunction', ns.name, 'crm');
    expect(fn!.metadata.deletionTimestamp).toBeDefined();
    // Its instance keeps running meanwhile: the Deployment and the consumer are still there.
    expect(await deployment('crm-web-runner')).toBeDefined();
    expect(await consumerInfo('crm-web')).toBeDefined();
  });

  it('of the instance removes its consumer (finalizer), its Deployment and config; then the function goes', async () => {
    await remove(ns.kc, 'FunctionInstance', ns.name, 'crm-web');
    await waitFor(
      'the instance to be gone',
      async () => !(await read(ns.kc, 'FunctionInstance', ns.name, 'crm-web')),
    );
    expect(await consumerInfo('crm-web')).toBeUndefined();
    await waitFor('the Deployment to be gone', async () => !(await deployment('crm-web-runner')));
    await waitFor('the runner config to be collected', () =>
      core()
        .readNamespacedConfigMap({ name: 'crm-web-runner-config', namespace: ns.name })
        .then(
          () => false,
          () => true,
        ),
    );
    // No instance uses the function any more: its deletion completes, revisions collected with it.
    await waitFor(
      'the function to be gone',
      async () => !(await read(ns.kc, 'DestinationFunction', ns.name, 'crm')),
    );
    await waitFor(
      'its revisions to be collected',
      async () =>
        (await core().listNamespacedConfigMap({ namespace: ns.name, labelSelector: 'dfn.dev/function=crm' }))
          .items.length === 0,
    );
  });
});
