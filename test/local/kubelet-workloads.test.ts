// What the operator's Pods will need from the local kubelet: a runner Deployment that delivers events sent
// through a gateway Deployment, and a Pod whose service-account token can do what its RBAC allows, no more.

import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { LOCAL_PORTS_ANNOTATION, type PortMapping } from '../../local/kubelet/pod-worker.js';
import { Destination } from '../helpers/destination.js';
import { deployment, kubectl, useNamespace } from '../helpers/kube.js';
import { DFN_IMAGE, POD_TEST_TIMEOUT_MS, useKubelet } from '../helpers/kubelet.js';
import { NatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('workloads');
const local = useKubelet(ns);
const core = () => ns.kc.makeApiClient(CoreV1Api);
const apps = () => ns.kc.makeApiClient(AppsV1Api);

async function finished(name: string): Promise<V1Pod> {
  return waitFor(
    `Pod ${name} to finish`,
    async () => {
      const p = await core().readNamespacedPod({ name, namespace: ns.name });
      return (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') && p;
    },
    120_000,
    200,
  );
}

describe('a runner Deployment, fed by a gateway Deployment', { timeout: POD_TEST_TIMEOUT_MS }, () => {
  let nats: NatsServer;
  let dest: Destination;
  beforeAll(async () => {
    nats = await NatsServer.start();
    dest = await Destination.start();
  });
  afterAll(async () => {
    await dest?.close();
    await nats?.dispose();
  });

  it('delivers an event sent to the gateway Pod to the destination, with the sensitive setting from its Secret', async () => {
    const FUNCTION = `
      async function onTrack(event, settings) {
        const res = await fetch(settings.url + '/orders', {
          method: 'POST',
          headers: { 'x-api-key': settings.apiKey, 'content-type': 'application/json' },
          body: JSON.stringify({ id: event.messageId, event: event.event, region: settings.region }),
        });
        if (!res.ok) throw new RetryError('destination answered ' + res.status);
      }`;
    const config = {
      apiVersion: 'dfn.dev/v1alpha1',
      kind: 'RunnerConfig',
      instance: { namespace: ns.name, name: 'orders', source: 'web' },
      function: {
        name: 'orders',
        revision: '1',
        settingsSchema: [
          { name: 'url', type: 'string', required: true },
          { name: 'region', type: 'string', default: 'eu' },
          { name: 'apiKey', type: 'string', required: true, sensitive: true },
        ],
      },
      nats: { url: nats.url, ensureTopology: true },
      network: { allowPrivateNetwork: true },
    };
    await core().createNamespacedConfigMap({
      namespace: ns.name,
      body: {
        metadata: { name: 'orders-runner' },
        data: {
          'config.yaml': stringify(config),
          'function.js': FUNCTION,
          'settings.json': JSON.stringify({ url: dest.url }),
        },
      },
    });
    await core().createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'orders-settings' }, stringData: { apiKey: 'k-123' } },
    });
    await core().createNamespacedSecret({
      namespace: ns.name,
      body: {
        metadata: { name: 'write-keys' },
        stringData: { 'write-keys.yaml': stringify({ 'wk-1': 'web' }) },
      },
    });
    await apps().createNamespacedDeployment({
      namespace: ns.name,
      body: deployment('orders-runner', {
        // As the operator's runner Pods: no Kubernetes credentials at all.
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'runner',
            image: DFN_IMAGE,
            args: ['runner', '--config', '/etc/dfn/runner'],
            // Not declared as a port: dfn's one HTTP server is what a probe of an undeclared port means.
            readinessProbe: {
              httpGet: { path: '/readyz', port: 8080 },
              periodSeconds: 1,
              timeoutSeconds: 5,
            },
            volumeMounts: [{ name: 'config', mountPath: '/etc/dfn/runner', readOnly: true }],
          },
        ],
        volumes: [
          {
            name: 'config',
            projected: {
              sources: [
                { configMap: { name: 'orders-runner' } },
                {
                  secret: {
                    name: 'orders-settings',
                    items: [{ key: 'apiKey', path: 'secrets/apiKey' }],
                  },
                },
              ],
            },
          },
        ],
      }),
    });
    await apps().createNamespacedDeployment({
      namespace: ns.name,
      body: deployment('gateway', {
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'gateway',
            image: DFN_IMAGE,
            command: ['dfn', 'gateway'],
            args: ['--write-keys', '/keys/write-keys.yaml', '--nats-url', nats.url, '--create-streams'],
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: {
              httpGet: { path: '/readyz', port: 'http' },
              periodSeconds: 1,
              timeoutSeconds: 5,
            },
            volumeMounts: [{ name: 'keys', mountPath: '/keys' }],
          },
        ],
        volumes: [{ name: 'keys', secret: { secretName: 'write-keys' } }],
      }),
    });
    for (const name of ['orders-runner', 'gateway']) {
      await waitFor(
        `${name} ready`,
        async () => {
          const d = await apps().readNamespacedDeployment({ name, namespace: ns.name });
          return d.status?.readyReplicas === 1;
        },
        180_000,
        200,
      );
    }
    const [gateway] = (await core().listNamespacedPod({ namespace: ns.name, labelSelector: 'app=gateway' }))
      .items;
    const ports = JSON.parse(gateway!.metadata!.annotations![LOCAL_PORTS_ANNOTATION]!) as Record<
      string,
      PortMapping[]
    >;
    const res = await fetch(`http://127.0.0.1:${ports.gateway![0]!.hostPort}/v1/track`, {
      method: 'POST',
      headers: { authorization: `Basic ${btoa('wk-1:')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'u1', event: 'Order Completed', messageId: 'm-1' }),
    });
    expect(res.status).toBe(200);
    const [request] = await waitFor(
      'the delivery',
      () => dest.requests.length > 0 && dest.requests,
      60_000,
      100,
    );
    expect(request!.url).toBe('/orders');
    expect(request!.headers['x-api-key']).toBe('k-123');
    expect(request!.json()).toEqual({ id: 'm-1', event: 'Order Completed', region: 'eu' });
  });
});

describe('a Pod with a service-account token', { timeout: POD_TEST_TIMEOUT_MS }, () => {
  beforeAll(async () => {
    await core().createNamespacedServiceAccount({
      namespace: ns.name,
      body: { metadata: { name: 'reader' } },
    });
    const rbac = ns.kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns.name,
      body: {
        metadata: { name: 'configmap-reader' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns.name }],
      },
    });
  });

  /** A Pod that makes one API call with its own credentials (`dfn kube-access`, a diagnostic subcommand). */
  async function access(name: string, args: string[], spec: Partial<NonNullable<V1Pod['spec']>> = {}) {
    await core().createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name },
        spec: {
          serviceAccountName: 'reader',
          restartPolicy: 'Never',
          containers: [{ name: 'probe', image: DFN_IMAGE, args: ['kube-access', ...args] }],
          ...spec,
        },
      },
    });
    const pod = await finished(name);
    // Read back as a user would: kubectl logs, through the API server and this kubelet's API.
    const logs = await kubectl(['logs', name], { namespace: ns.name });
    expect(logs.code).toBe(0);
    return {
      pod,
      exitCode: pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode,
      logs: logs.stdout,
    };
  }

  it('lists what its Role allows', async () => {
    const { pod, exitCode, logs } = await access('list-configmaps', ['list', 'v1', 'ConfigMap']);
    expect(pod.status?.phase).toBe('Succeeded');
    expect(exitCode).toBe(0);
    const result = JSON.parse(logs.trim().split('\n').pop()!);
    expect(result).toMatchObject({ allowed: true, namespace: ns.name, kind: 'ConfigMap' });
    // The namespace's CA bundle ConfigMap, which kube-controller-manager publishes in every namespace.
    expect(result.names).toContain('kube-root-ca.crt');
  });

  it('is refused what its Role does not allow: Secrets, and ConfigMaps of another namespace', async () => {
    for (const [name, args] of [
      ['list-secrets', ['list', 'v1', 'Secret']],
      ['list-elsewhere', ['list', 'v1', 'ConfigMap', '--namespace', 'default']],
    ] as const) {
      const { pod, exitCode, logs } = await access(name, [...args]);
      expect(pod.status?.phase).toBe('Failed');
      expect(exitCode).toBe(1);
      expect(JSON.parse(logs.trim().split('\n').pop()!)).toMatchObject({
        allowed: false,
        code: 403,
        reason: 'Forbidden',
      });
    }
  });

  it('gets a real token bound to the Pod, and the cluster CA, in the projected volume the API server added', async () => {
    await core().createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'token-holder' },
        spec: {
          serviceAccountName: 'reader',
          containers: [{ name: 'gw', image: DFN_IMAGE, args: ['gateway', '--write-keys', '/nowhere.yaml'] }],
        },
      },
    });
    const pod = await waitFor(
      'the Pod to start',
      async () => {
        const p = await core().readNamespacedPod({ name: 'token-holder', namespace: ns.name });
        return p.status?.containerStatuses?.[0]?.state && local.kubelet.pod(ns.name, 'token-holder') && p;
      },
      60_000,
      200,
    );
    // ServiceAccount admission (as in any cluster) added the kube-api-access volume and its mount.
    const mount = pod.spec!.containers[0]!.volumeMounts!.find(
      (m) => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount',
    );
    expect(mount?.name).toMatch(/^kube-api-access-/);
    const dir = join(
      local.kubelet.pod(ns.name, 'token-holder')!.root,
      'var/run/secrets/kubernetes.io/serviceaccount',
    );
    await waitFor('the token file', () => statSync(join(dir, 'token'), { throwIfNoEntry: false }));
    const token = readFileSync(join(dir, 'token'), 'utf8');
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims.sub).toBe(`system:serviceaccount:${ns.name}:reader`);
    expect(claims['kubernetes.io'].pod).toEqual({ name: 'token-holder', uid: pod.metadata!.uid });
    expect(statSync(join(dir, 'token')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'ca.crt'), 'utf8')).toBe(readFileSync(ns.cp.caCert, 'utf8'));
    expect(readFileSync(join(dir, 'namespace'), 'utf8')).toBe(ns.name);
    await core().deleteNamespacedPod({ name: 'token-holder', namespace: ns.name, gracePeriodSeconds: 1 });
  });

  it('without a token (automountServiceAccountToken: false, as runner Pods), has no credentials at all', async () => {
    const { pod, exitCode, logs } = await access('no-token', ['list', 'v1', 'ConfigMap'], {
      automountServiceAccountToken: false,
    });
    expect(pod.spec?.volumes ?? []).toEqual([]);
    expect(exitCode).toBe(2);
    expect(logs).toContain('no in-cluster credentials');
  });
});
