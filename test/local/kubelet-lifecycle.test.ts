// Pod lifecycle on the local kubelet: liveness restarts, init containers and restart policies, waiting for
// a missing ConfigMap, bounded replacement of Pods it cannot run, and nothing left running when it stops.

import { existsSync } from 'node:fs';
import { AppsV1Api, CoreV1Api, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Kubelet } from '../../local/kubelet/kubelet.js';
import { deployment, useNamespace } from '../helpers/kube.js';
import { DFN_FROM_SOURCES, DFN_IMAGE, POD_TEST_TIMEOUT_MS, useKubelet } from '../helpers/kubelet.js';
import { alive } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('lifecycle');
const local = useKubelet(ns);
const other = useNamespace('lifecycle-stop');
const core = () => ns.kc.makeApiClient(CoreV1Api);

async function pod(name: string, spec: NonNullable<V1Pod['spec']>, namespace = ns.name): Promise<void> {
  await core().createNamespacedPod({
    namespace,
    body: { metadata: { name }, spec: { automountServiceAccountToken: false, ...spec } },
  });
}

const read = (name: string, namespace = ns.name) => core().readNamespacedPod({ name, namespace });

/** A gateway that cannot reach NATS: alive (/healthz) but never ready (/readyz 503). */
const unreadyGateway = (extra: Partial<V1Container> = {}): V1Container => ({
  name: 'gateway',
  image: DFN_IMAGE,
  args: ['gateway', '--write-keys', '/keys.yaml', '--nats-url', 'nats://127.0.0.1:1'],
  ports: [{ name: 'http', containerPort: 8080 }],
  volumeMounts: [{ name: 'keys', mountPath: '/keys.yaml', subPath: 'keys.yaml' }],
  ...extra,
});

describe('the local kubelet', { timeout: POD_TEST_TIMEOUT_MS }, () => {
  it('restarts a container whose liveness probe fails, and keeps an unready one out of Ready', async () => {
    await core().createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'keys' }, data: { 'keys.yaml': 'wk: web\n' } },
    });
    await pod('liveness', {
      containers: [
        unreadyGateway({
          livenessProbe: {
            httpGet: { path: '/readyz', port: 'http' },
            periodSeconds: 1,
            failureThreshold: 2,
            timeoutSeconds: 5,
          },
          readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 1, timeoutSeconds: 5 },
        }),
      ],
      volumes: [{ name: 'keys', configMap: { name: 'keys' } }],
      terminationGracePeriodSeconds: 5,
    });
    const restarted = await waitFor(
      'a liveness restart',
      async () => {
        const p = await read('liveness');
        return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 && p;
      },
      120_000,
      200,
    );
    expect(restarted.status?.containerStatuses?.[0]?.lastState?.terminated).toBeDefined();
    // Its readiness probe (/readyz: no NATS) never passed, so it never counted as Ready.
    expect(restarted.status?.containerStatuses?.[0]?.ready).toBe(false);
    expect(restarted.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
  });

  it('runs init containers to completion first; with restartPolicy Never the Pod ends Succeeded', async () => {
    await pod('init-ok', {
      restartPolicy: 'Never',
      initContainers: [{ name: 'first', image: DFN_IMAGE, args: ['--help'] }],
      containers: [{ name: 'main', image: DFN_IMAGE, args: ['runner', '--explain'] }],
    });
    await waitFor(
      'Succeeded',
      async () => (await read('init-ok')).status?.phase === 'Succeeded',
      120_000,
      200,
    );
    const p = await read('init-ok');
    expect(p.status?.initContainerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    expect(p.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    expect(p.status?.conditions?.find((c) => c.type === 'Initialized')?.status).toBe('True');
  });

  it('never starts the main container when an init container fails under restartPolicy Never', async () => {
    await pod('init-fails', {
      restartPolicy: 'Never',
      initContainers: [{ name: 'first', image: DFN_IMAGE, args: ['no-such-subcommand'] }],
      containers: [{ name: 'main', image: DFN_IMAGE, args: ['--help'] }],
    });
    await waitFor('Failed', async () => (await read('init-fails')).status?.phase === 'Failed', 120_000, 200);
    const p = await read('init-fails');
    expect(p.status?.initContainerStatuses?.[0]?.state?.terminated?.exitCode).toBe(2);
    expect(local.kubelet.pod(ns.name, 'init-fails')?.container('main')?.everStarted).toBe(false);
  });

  it('waits for a missing ConfigMap (CreateContainerConfigError), then starts once it exists', async () => {
    await pod('waits', {
      containers: [
        {
          name: 'main',
          image: DFN_IMAGE,
          args: ['runner', '--explain'],
          env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'late', key: 'x' } } }],
        },
      ],
      restartPolicy: 'Never',
    });
    const waiting = await waitFor('the config error', async () => {
      const p = await read('waits');
      return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError' && p;
    });
    expect(waiting.status?.containerStatuses?.[0]?.state?.waiting?.message).toContain(
      'configmap "late" not found',
    );
    expect(waiting.status?.phase).toBe('Pending');
    await core().createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'late' }, data: { x: '1' } },
    });
    await waitFor('Succeeded', async () => (await read('waits')).status?.phase === 'Succeeded', 120_000, 200);
  });

  it('fails a Pod with a volume it cannot provide (hostPath), running nothing', async () => {
    await pod('hostpath', {
      containers: [
        { name: 'main', image: DFN_IMAGE, args: ['--help'], volumeMounts: [{ name: 'h', mountPath: '/h' }] },
      ],
      volumes: [{ name: 'h', hostPath: { path: '/etc' } }],
    });
    const p = await waitFor('Failed', async () => {
      const r = await read('hostpath');
      return r.status?.phase === 'Failed' && r;
    });
    expect(p.status?.reason).toBe('UnsupportedVolume');
    expect(p.status?.message).toContain('hostPath volumes cannot be run');
    expect(local.kubelet.pod(ns.name, 'hostpath')?.container('main')?.everStarted).toBe(false);
  });

  it('replaces the failed Pods of a Deployment with an unknown image slowly, not in a busy loop', async () => {
    const apps = ns.kc.makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({
      namespace: ns.name,
      body: deployment('foreign', { containers: [{ name: 'c', image: 'redis:7' }] }),
    });
    const list = async () =>
      (await core().listNamespacedPod({ namespace: ns.name, labelSelector: 'app=foreign' })).items;
    await waitFor('a first Failed Pod', async () => (await list()).some((p) => p.status?.phase === 'Failed'));
    // Each further failure of the same owner waits twice as long (1 s, 2 s, 4 s, …): a few Pods, not hundreds.
    await new Promise((r) => setTimeout(r, 6_000));
    const pods = await list();
    expect(pods.length).toBeLessThanOrEqual(6);
    expect(
      pods.filter((p) => p.status?.phase === 'Failed').every((p) => p.status?.reason === 'UnsupportedImage'),
    ).toBe(true);
    await apps.deleteNamespacedDeployment({ name: 'foreign', namespace: ns.name });
  });

  it('leaves no process behind when it stops, and says its node is not ready', async () => {
    const server = new URL(other.cp.server);
    const kubelet = await Kubelet.start({
      kubeConfig: other.kc,
      nodeName: `node-${other.name}`,
      images: { repositories: ['ghcr.io/dfn-dev/dfn'], dfn: DFN_FROM_SOURCES },
      apiServer: { host: server.hostname, port: Number(server.port) },
      namespaces: [other.name],
    });
    try {
      await core().createNamespacedConfigMap({
        namespace: other.name,
        body: { metadata: { name: 'keys' }, data: { 'keys.yaml': 'wk: web\n' } },
      });
      for (const name of ['a', 'b']) {
        await pod(
          name,
          { containers: [unreadyGateway()], volumes: [{ name: 'keys', configMap: { name: 'keys' } }] },
          other.name,
        );
      }
      const pids = await waitFor(
        'both processes',
        () => {
          const found = ['a', 'b'].map((n) => kubelet.pod(other.name, n)?.container('gateway')?.pid);
          return found.every((p) => p !== undefined) && (found as number[]);
        },
        60_000,
        100,
      );
      // Really running: each serves /healthz on its port.
      for (const name of ['a', 'b']) {
        const port = kubelet.pod(other.name, name)!.portsOf('gateway')[0]!.hostPort;
        await waitFor(
          `${name} serving`,
          () =>
            fetch(`http://127.0.0.1:${port}/healthz`).then(
              (r) => r.ok,
              () => false,
            ),
          60_000,
          100,
        );
      }
      await kubelet.stop();
      await waitFor('every process to be gone', () => pids.every((pid) => !alive(pid)), 10_000);
      expect(existsSync(kubelet.dir)).toBe(false);
      const node = await core().readNode({ name: kubelet.nodeName });
      expect(node.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
        status: 'False',
        reason: 'KubeletStopped',
      });
    } finally {
      await kubelet.stop();
    }
  });
});
