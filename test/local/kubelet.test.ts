// The local kubelet on the shared control plane: Deployments of the dfn image become processes with the
// Pod's env, mounts and probes; Deployment status is real; restarts, scaling, deletion; unknown images.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import {
  AppsV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { LOCAL_PORTS_ANNOTATION, type PortMapping } from '../../local/kubelet/pod-worker.js';
import { deployment, kubectl, useNamespace } from '../helpers/kube.js';
import { DFN_IMAGE, POD_TEST_TIMEOUT_MS, useKubelet } from '../helpers/kubelet.js';
import { NatsServer } from '../helpers/nats-server.js';
import { alive, environOf } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('kubelet');
const local = useKubelet(ns);

let nats: NatsServer;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await nats.connect();
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

const core = () => ns.kc.makeApiClient(CoreV1Api);
const apps = () => ns.kc.makeApiClient(AppsV1Api);

async function podsOf(app: string): Promise<V1Pod[]> {
  const list = await core().listNamespacedPod({ namespace: ns.name, labelSelector: `app=${app}` });
  return list.items;
}

const hostPort = (pod: V1Pod, container: string, name = 'http') => {
  const ports = JSON.parse(pod.metadata!.annotations![LOCAL_PORTS_ANNOTATION]!) as Record<
    string,
    PortMapping[]
  >;
  return ports[container]!.find((p) => p.name === name)!.hostPort;
};

/** Local addresses of the sockets listening on `port`, from the kernel's tables (IPv4 and IPv6). */
function listening(port: number): string[] {
  const out: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = existsSync(table) ? readFileSync(table, 'utf8') : '';
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== '0A' || !local) continue; // 0A: LISTEN
      const [addr, hexPort] = local.split(':') as [string, string];
      if (Number.parseInt(hexPort, 16) !== port) continue;
      out.push(addr.length === 8 ? ipv4(addr) : addr === '0'.repeat(32) ? '::' : `ipv6:${addr}`);
    }
  }
  return out;
}

/** /proc/net/tcp writes an IPv4 address as little-endian hex. */
const ipv4 = (hex: string) => [6, 4, 2, 0].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)).join('.');

function gatewayDeployment(replicas: number): V1Deployment {
  const d = deployment(
    'gateway',
    {
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 10,
      containers: [
        {
          name: 'gateway',
          image: DFN_IMAGE,
          args: ['gateway', '--write-keys', '/etc/dfn/keys/write-keys.yaml', '--create-streams'],
          ports: [{ name: 'http', containerPort: 8080 }],
          env: [
            {
              name: 'DFN_NATS_URL',
              valueFrom: { configMapKeyRef: { name: 'gateway-config', key: 'natsUrl' } },
            },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'TEAM', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['team']" } } },
            { name: 'GREETING', value: 'hello from $(POD_NAME)' },
            { name: 'API_TOKEN', valueFrom: { secretKeyRef: { name: 'gateway-keys', key: 'token' } } },
          ],
          readinessProbe: {
            httpGet: { path: '/readyz', port: 'http' },
            periodSeconds: 1,
            timeoutSeconds: 5,
            failureThreshold: 3,
          },
          volumeMounts: [
            { name: 'keys', mountPath: '/etc/dfn/keys', readOnly: true },
            { name: 'notes', mountPath: '/etc/dfn/notes' },
          ],
        },
      ],
      volumes: [
        {
          name: 'keys',
          secret: {
            secretName: 'gateway-keys',
            items: [{ key: 'write-keys.yaml', path: 'write-keys.yaml' }],
          },
        },
        { name: 'notes', configMap: { name: 'gateway-config' } },
      ],
    },
    replicas,
  );
  d.spec!.template.metadata!.annotations = { team: 'data' };
  return d;
}

async function track(port: number, writeKey: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/track`, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa(`${writeKey}:`)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'u1', event: 'Signed Up' }),
  });
  return res.status;
}

it('registers its Node Ready, with the capacity of this machine', async () => {
  const node = await core().readNode({ name: local.kubelet.nodeName });
  expect(node.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
    status: 'True',
    reason: 'KubeletReady',
  });
  expect(Number(node.status?.capacity?.cpu)).toBe(cpus().length);
  expect(node.status?.capacity?.memory).toMatch(/^\d+Ki$/);
  expect(node.status?.addresses).toEqual([{ type: 'InternalIP', address: '127.0.0.1' }]);
  expect(node.metadata?.labels?.['kubernetes.io/hostname']).toBe(local.kubelet.nodeName);
});

describe('a Deployment of the dfn image', { timeout: POD_TEST_TIMEOUT_MS }, () => {
  beforeAll(async () => {
    await core().createNamespacedSecret({
      namespace: ns.name,
      body: {
        metadata: { name: 'gateway-keys' },
        stringData: { 'write-keys.yaml': stringify({ 'wk-web': 'web' }), token: 's3cr3t' },
      },
    });
    await core().createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'gateway-config' }, data: { natsUrl: nats.url, 'motd.txt': 'first' } },
    });
    await apps().createNamespacedDeployment({ namespace: ns.name, body: gatewayDeployment(2) });
  });

  it('runs 2 processes, Ready from their probe, and the Deployment counts 2 ready replicas', async () => {
    const deployment = await waitFor(
      'readyReplicas 2',
      async () => {
        const d = await apps().readNamespacedDeployment({ name: 'gateway', namespace: ns.name });
        return d.status?.readyReplicas === 2 && d;
      },
      180_000,
      200,
    );
    expect(deployment.status?.availableReplicas).toBe(2);
    const pods = await podsOf('gateway');
    expect(pods).toHaveLength(2);
    const pids = new Set<number>();
    for (const pod of pods) {
      expect(pod.spec?.nodeName).toBe(local.kubelet.nodeName);
      expect(pod.status?.phase).toBe('Running');
      expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      const pid = local.kubelet.pod(ns.name, pod.metadata!.name!)!.container('gateway')!.pid!;
      expect(alive(pid)).toBe(true);
      pids.add(pid);
      // Served on the port the kubelet gave it, published on the Pod.
      expect(await track(hostPort(pod, 'gateway'), 'wk-web')).toBe(200);
    }
    expect(pids.size).toBe(2);
  });

  it("serves each Pod's port on loopback only, never on the machine's other addresses", async () => {
    for (const pod of await podsOf('gateway')) {
      expect(listening(hostPort(pod, 'gateway'))).toEqual(['127.0.0.1']);
    }
  });

  it("gives each process the Pod's env (ConfigMap, Secret, downward API, $(VAR)) and nothing of the kubelet's", async () => {
    for (const pod of await podsOf('gateway')) {
      const name = pod.metadata!.name!;
      const worker = local.kubelet.pod(ns.name, name)!;
      const env = environOf(worker.container('gateway')!.pid!);
      expect(env).toMatchObject({
        DFN_NATS_URL: nats.url,
        POD_NAME: name,
        TEAM: 'data',
        GREETING: `hello from ${name}`,
        API_TOKEN: 's3cr3t',
        DFN_POD_ROOT: worker.root,
        DFN_HTTP_PORT: String(hostPort(pod, 'gateway')),
        DFN_HTTP_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: new URL(ns.cp.server).port,
      });
      // The test runner's own variables (and so the kubelet's) stay out of the Pod.
      expect(Object.keys(env).filter((k) => k.startsWith('VITEST'))).toEqual([]);
      expect(env.KUBECONFIG).toBeUndefined();
    }
  });

  it('mounts the ConfigMap and Secret under the Pod root at their mount paths', async () => {
    const [pod] = await podsOf('gateway');
    const root = local.kubelet.pod(ns.name, pod!.metadata!.name!)!.root;
    expect(readFileSync(join(root, 'etc/dfn/keys/write-keys.yaml'), 'utf8')).toBe(
      stringify({ 'wk-web': 'web' }),
    );
    // items: only the key asked for.
    expect(readdirSync(join(root, 'etc/dfn/keys')).filter((f) => !f.startsWith('..'))).toEqual([
      'write-keys.yaml',
    ]);
    expect(readFileSync(join(root, 'etc/dfn/notes/motd.txt'), 'utf8')).toBe('first');
    expect(readFileSync(join(root, 'etc/dfn/notes/natsUrl'), 'utf8')).toBe(nats.url);
  });

  it('brings a ConfigMap or Secret edit to the mounted files within seconds, and the process sees it', async () => {
    await core().patchNamespacedConfigMap(
      { name: 'gateway-config', namespace: ns.name, body: { data: { 'motd.txt': 'second' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const pods = await podsOf('gateway');
    for (const pod of pods) {
      const root = local.kubelet.pod(ns.name, pod.metadata!.name!)!.root;
      await waitFor(
        'the edited motd.txt',
        () => readFileSync(join(root, 'etc/dfn/notes/motd.txt'), 'utf8') === 'second',
      );
    }
    await core().replaceNamespacedSecret({
      name: 'gateway-keys',
      namespace: ns.name,
      body: {
        metadata: { name: 'gateway-keys' },
        stringData: {
          'write-keys.yaml': stringify({ 'wk-web': 'web', 'wk-backend': 'backend' }),
          token: 's3cr3t',
        },
      },
    });
    // The gateway re-reads its write-keys file: the new key works on every replica.
    for (const pod of pods) {
      await waitFor(
        'the new write key to be accepted',
        async () => (await track(hostPort(pod, 'gateway'), 'wk-backend')) === 200,
        60_000,
        250,
      );
    }
  });

  it('restarts a process killed with SIGKILL, and the restart count grows', async () => {
    const [pod] = await podsOf('gateway');
    const name = pod!.metadata!.name!;
    const run = local.kubelet.pod(ns.name, name)!.container('gateway')!;
    const before = run.pid!;
    process.kill(before, 'SIGKILL');
    const restarted = await waitFor(
      'the restarted container',
      async () => {
        const p = await core().readNamespacedPod({ name, namespace: ns.name });
        const status = p.status?.containerStatuses?.[0];
        return status?.restartCount === 1 && status.state?.running && status.ready && p;
      },
      120_000,
      200,
    );
    const status = restarted.status!.containerStatuses![0]!;
    expect(status.lastState?.terminated).toMatchObject({ exitCode: 137, signal: 9, reason: 'Error' });
    expect(run.pid).not.toBe(before);
    expect(alive(run.pid!)).toBe(true);
    const table = await kubectl(['get', 'pod', name, '--no-headers'], { namespace: ns.name });
    expect(table.stdout).toMatch(/1\/1\s+Running\s+1 \(.* ago\)/);
  });

  it('kubectl logs reads a container, and --previous the run before its restart', async () => {
    const [pod] = await podsOf('gateway');
    const name = pod!.metadata!.name!;
    const worker = local.kubelet.pod(ns.name, name)!;
    expect(worker.container('gateway')!.restartCount).toBe(1);
    const current = await kubectl(['logs', name], { namespace: ns.name });
    expect(current.code).toBe(0);
    expect(current.stdout).toBe(readFileSync(worker.container('gateway')!.logFile(1), 'utf8'));
    expect(current.stdout).toContain('gateway started');
    const last = await kubectl(['logs', name, '--tail=1'], { namespace: ns.name });
    expect(last.stdout.trim().split('\n')).toHaveLength(1);
    expect(current.stdout.trimEnd().endsWith(last.stdout.trimEnd())).toBe(true);
    const previous = await kubectl(['logs', name, '--previous'], { namespace: ns.name });
    expect(previous.code).toBe(0);
    expect(previous.stdout).toBe(readFileSync(worker.container('gateway')!.logFile(0), 'utf8'));
    expect(previous.stdout).toContain('gateway started');
  });

  it('scaled to 0, stops the processes (SIGTERM, within the grace period) and removes the Pods', async () => {
    const pods = await podsOf('gateway');
    const pids = pods.map((p) => local.kubelet.pod(ns.name, p.metadata!.name!)!.container('gateway')!.pid!);
    const scale = await kubectl(['scale', 'deployment/gateway', '--replicas=0'], { namespace: ns.name });
    expect(scale.code).toBe(0);
    await waitFor('the processes to end', () => pids.every((pid) => !alive(pid)), 60_000, 100);
    await waitFor('the Pods to be gone', async () => (await podsOf('gateway')).length === 0, 60_000, 200);
    // They ended on SIGTERM (the gateway exits 0 after a graceful stop), not by the SIGKILL after the grace period.
    for (const pod of pods) {
      const name = `${ns.name}/${pod.metadata!.name}`;
      const exits = local.log.filter((l) => l.msg === 'container exited' && l.fields?.pod === name);
      expect(exits.at(-1)?.fields).toMatchObject({ code: 0, signal: null });
    }
    await waitFor('the kubelet to let go of them', () =>
      pods.every((p) => !local.kubelet.pod(ns.name, p.metadata!.name!)),
    );
    expect((await kubectl(['delete', 'deployment/gateway'], { namespace: ns.name })).code).toBe(0);
  });
});

describe('Pods this kubelet cannot run', { timeout: POD_TEST_TIMEOUT_MS }, () => {
  it('marks a Pod of another image Failed with the reason, and runs nothing', async () => {
    await core().createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'nginx' },
        spec: { containers: [{ name: 'web', image: 'nginx:1.27', command: ['nginx'] }] },
      },
    });
    const pod = await waitFor('the Failed Pod', async () => {
      const p = await core().readNamespacedPod({ name: 'nginx', namespace: ns.name });
      return p.status?.phase === 'Failed' && p;
    });
    expect(pod.status?.reason).toBe('UnsupportedImage');
    expect(pod.status?.message).toContain('nginx:1.27 cannot run here');
    expect(pod.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe('UnsupportedImage');
    const worker = local.kubelet.pod(ns.name, 'nginx');
    expect(worker?.container('web')?.everStarted ?? false).toBe(false);
    expect(existsSync(join(local.kubelet.dir, 'logs', `${ns.name}_nginx_${pod.metadata!.uid}`))).toBe(false);
    // Deleting it later still works: the kubelet has the last word on a Pod it failed.
    expect((await kubectl(['delete', 'pod', 'nginx', '--wait=false'], { namespace: ns.name })).code).toBe(0);
    await waitFor('the Pod to be gone', () =>
      core()
        .readNamespacedPod({ name: 'nginx', namespace: ns.name })
        .then(
          () => false,
          (err) => err.code === 404,
        ),
    );
  });

  it('refuses a command of the dfn image that is not dfn', async () => {
    await core().createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'shell' },
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'sh', image: DFN_IMAGE, command: ['node', '-e', 'process.exit(0)'] }],
        },
      },
    });
    const pod = await waitFor('the Failed Pod', async () => {
      const p = await core().readNamespacedPod({ name: 'shell', namespace: ns.name });
      return p.status?.phase === 'Failed' && p;
    });
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 128,
      reason: 'StartError',
    });
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.message).toContain(
      '"node" is not in the dfn image',
    );
  });
});
