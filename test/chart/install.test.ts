// `helm install` of the chart on a real control plane, its Pods run by the local kubelet as processes of the
// dfn image: the operator and the gateway become ready as the chart configures them, the gateway takes
// events with the chart's write keys, the operator creates the streams; `helm uninstall` leaves only the CRDs.

import { ApiextensionsV1Api, AppsV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_PORTS_ANNOTATION } from '../../local/kubelet/pod-worker.js';
import { useNamespace } from '../helpers/kube.js';
import { DFN_IMAGE, POD_TEST_TIMEOUT_MS, useKubelet } from '../helpers/kubelet.js';
import { NatsServer } from '../helpers/nats-server.js';
import { apply, destinationFunction, functionInstance } from '../helpers/operator.js';
import { waitFor } from '../helpers/wait.js';
import { CHART_DIR, helm, setFlags, stderrOf } from './helm.js';

const ns = useNamespace('chart-install');
useKubelet(ns);
let nats: NatsServer;
let release = '';
const WRITE_KEY = 'wk_chart_test_1';
const RUNNER_RESOURCES = { requests: { cpu: '50m', memory: '200Mi' }, limits: { memory: '900Mi' } };

beforeAll(async () => {
  nats = await NatsServer.start();
  release = ns.name;
}, 60_000);

afterAll(async () => {
  if (release)
    await helm(['uninstall', release, '--namespace', ns.name], { kubeconfig: ns.cp.kubeconfigPath });
  await nats?.dispose();
}, 120_000);

const tag = DFN_IMAGE.split(':').pop()!;

async function deploymentAvailable(name: string) {
  const d = await ns.kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name, namespace: ns.name });
  return (
    d.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True') &&
    (d.status.readyReplicas ?? 0) >= 1
  );
}

/** The loopback port the local kubelet gave a Pod's http port (Services do not route here). */
async function gatewayUrl(): Promise<string> {
  const pods = await ns.kc.makeApiClient(CoreV1Api).listNamespacedPod({
    namespace: ns.name,
    labelSelector: 'app.kubernetes.io/component=gateway',
  });
  const ready = pods.items.find((p) =>
    p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
  const ports = JSON.parse(ready!.metadata!.annotations![LOCAL_PORTS_ANNOTATION]!) as Record<
    string,
    { name: string; hostPort: number }[]
  >;
  return `http://127.0.0.1:${ports.gateway!.find((p) => p.name === 'http')!.hostPort}`;
}

/** A track event through the gateway, as a Segment client sends it. */
const track = (url: string, writeKey: string, event: string) =>
  fetch(`${url}/v1/track`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ userId: 'u1', event }),
  });

describe('helm install with the local kubelet', { timeout: POD_TEST_TIMEOUT_MS }, () => {
  it('runs the operator and the gateway to ready', async () => {
    const run = await helm(
      [
        'install',
        release,
        CHART_DIR,
        '--namespace',
        ns.name,
        ...setFlags({
          'image.tag': tag,
          'nats.url': nats.url,
          'writeKeys.keys': { [WRITE_KEY]: 'web' },
          'gateway.replicas': 1,
          'operator.watchNamespaces': [ns.name],
          'operator.allowPrivateNetwork': [ns.name],
          'runner.resources': RUNNER_RESOURCES,
        }),
      ],
      { kubeconfig: ns.cp.kubeconfigPath },
    );
    expect(stderrOf(run)).toBe('');
    expect(run.code).toBe(0);
    // NOTES.txt: the next commands.
    expect(run.stdout).toContain(
      `kubectl -n ${ns.name} get deployments -l app.kubernetes.io/instance=${release}`,
    );
    expect(run.stdout).toContain('kubectl apply -f examples/webhook/');
    await waitFor(
      `${release}-dfn-gateway available`,
      () => deploymentAvailable(`${release}-dfn-gateway`),
      180_000,
      500,
    );
    await waitFor(
      `${release}-dfn-operator available`,
      () => deploymentAvailable(`${release}-dfn-operator`),
      180_000,
      500,
    );
  });

  it("runner.resources sizes the runners of instances that set none; an instance's own spec.resources wins", async () => {
    await apply(
      ns.kc,
      destinationFunction(ns.name, 'sized', { code: 'async function onTrack(event) { return 1; }\n' }),
    );
    const own = { requests: { cpu: '10m', memory: '150Mi' }, limits: { memory: '600Mi' } };
    // Suspended: the Deployments are what is checked, no runner needs to start.
    await apply(
      ns.kc,
      functionInstance(ns.name, 'plain', { functionRef: { name: 'sized' }, source: 'web', suspend: true }),
    );
    await apply(
      ns.kc,
      functionInstance(ns.name, 'own', {
        functionRef: { name: 'sized' },
        source: 'web',
        suspend: true,
        resources: own,
      }),
    );
    const resources = async (instance: string) =>
      (
        await ns.kc
          .makeApiClient(AppsV1Api)
          .readNamespacedDeployment({ name: `${instance}-runner`, namespace: ns.name })
          .catch(() => undefined)
      )?.spec?.template.spec?.containers[0]?.resources;
    expect(await waitFor('the plain runner Deployment', () => resources('plain'), 120_000, 250)).toEqual(
      RUNNER_RESOURCES,
    );
    expect(await waitFor('the sized runner Deployment', () => resources('own'), 120_000, 250)).toEqual(own);
  });

  it('the operator created the streams, with the replica count of the values', async () => {
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await nc.jetstreamManager();
      const info = await waitFor(
        'the events stream',
        () => jsm.streams.info('DFN_EVENTS').catch(() => undefined),
        60_000,
        250,
      );
      expect(info.config.num_replicas).toBe(1);
      expect(info.config.storage).toBe('file');
    } finally {
      await nc.close();
    }
  });

  it('the gateway accepts events with the write key of the values and refuses others', async () => {
    const url = await gatewayUrl();
    const send = (key: string) => track(url, key, 'Chart Installed');
    expect((await send(WRITE_KEY)).status).toBe(200);
    expect((await send('not-a-key')).status).toBe(401);
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await nc.jetstreamManager();
      const stored = await jsm.streams.getMessage('DFN_EVENTS', { last_by_subj: 'dfn.events.web.track' });
      expect(stored.json<{ event: string }>().event).toBe('Chart Installed');
    } finally {
      await nc.close();
    }
  });

  it('a NATS outage takes the gateway out of service by its readiness probe, not its liveness; it comes back', async () => {
    const core = ns.kc.makeApiClient(CoreV1Api);
    const gatewayPod = async () =>
      (
        await core.listNamespacedPod({
          namespace: ns.name,
          labelSelector: 'app.kubernetes.io/component=gateway',
        })
      ).items.find((p) => !p.metadata?.deletionTimestamp)!;
    const ready = (p: Awaited<ReturnType<typeof gatewayPod>>) =>
      p.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    const before = await gatewayPod();
    const restarts = before.status?.containerStatuses?.[0]?.restartCount ?? 0;
    await nats.stop();
    await waitFor(
      'the gateway pod to be not ready',
      async () => ready(await gatewayPod()) === 'False',
      90_000,
      500,
    );
    await nats.restart();
    await waitFor(
      'the gateway pod to be ready again',
      async () => ready(await gatewayPod()) === 'True',
      90_000,
      500,
    );
    const after = await gatewayPod();
    expect(after.metadata?.uid).toBe(before.metadata?.uid);
    expect(after.status?.containerStatuses?.[0]?.restartCount ?? 0).toBe(restarts);
  });

  it('a new write key added with helm upgrade reaches the running gateway', async () => {
    const run = await helm(
      [
        'upgrade',
        release,
        CHART_DIR,
        '--namespace',
        ns.name,
        '--reuse-values',
        '--set',
        'writeKeys.keys.wk_chart_test_2=backend',
      ],
      { kubeconfig: ns.cp.kubeconfigPath },
    );
    expect(run.code).toBe(0);
    const url = await gatewayUrl();
    await waitFor(
      'the gateway to accept the new key',
      async () => (await track(url, 'wk_chart_test_2', 'Upgraded')).status === 200,
      90_000,
      500,
    );
  });

  it('helm uninstall leaves no dfn objects behind but the CRDs', async () => {
    const run = await helm(['uninstall', release, '--namespace', ns.name, '--wait'], {
      kubeconfig: ns.cp.kubeconfigPath,
    });
    expect(run.code).toBe(0);
    const uninstalled = release;
    release = '';
    const selector = `app.kubernetes.io/instance=${uninstalled}`;
    const apps = ns.kc.makeApiClient(AppsV1Api);
    const core = ns.kc.makeApiClient(CoreV1Api);
    const rbac = ns.kc.makeApiClient(RbacAuthorizationV1Api);
    await waitFor(
      'the release’s objects to be gone',
      async () => {
        const left = [
          ...(await apps.listNamespacedDeployment({ namespace: ns.name, labelSelector: selector })).items,
          ...(await core.listNamespacedService({ namespace: ns.name, labelSelector: selector })).items,
          ...(await core.listNamespacedSecret({ namespace: ns.name, labelSelector: selector })).items,
          ...(await core.listNamespacedServiceAccount({ namespace: ns.name, labelSelector: selector })).items,
          ...(await rbac.listNamespacedRole({ namespace: ns.name, labelSelector: selector })).items,
          ...(await rbac.listClusterRole({ labelSelector: selector })).items,
          ...(await rbac.listClusterRoleBinding({ labelSelector: selector })).items,
          ...(await core.listNamespacedPod({ namespace: ns.name, labelSelector: selector })).items,
        ];
        return left.length === 0;
      },
      120_000,
      500,
    );
    const status = await helm(['status', uninstalled, '--namespace', ns.name], {
      kubeconfig: ns.cp.kubeconfigPath,
    });
    expect(status.code).not.toBe(0);
    // Helm's convention: the CRDs (and so every function and instance of every namespace) stay.
    const extensions = ns.kc.makeApiClient(ApiextensionsV1Api);
    for (const name of ['destinationfunctions.dfn.dev', 'functioninstances.dfn.dev']) {
      expect((await extensions.readCustomResourceDefinition({ name })).metadata?.name).toBe(name);
    }
  });
});
