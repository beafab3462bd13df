// The chart as `helm lint` and `helm template` see it: clean, labelled, its values checked by the schema with
// a message naming the value, and each value reaching the flag or field it is documented to set.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CHART_DIR, find, helm, type Manifest, render, setFlags } from './helm.js';

const chart = parse(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as {
  version: string;
  appVersion: string;
};
const container = (d: Manifest) => d.spec.template.spec.containers[0];
const args = (d: Manifest): string[] => container(d).args;

describe('helm lint and template', () => {
  it('helm lint --strict passes with the default values and with every optional part on', async () => {
    for (const values of [
      {},
      {
        'nats.credentialsSecret.name': 'nats-creds',
        'nats.runnerCredentialsSecret.name': 'runner-creds',
        'operator.watchNamespaces': ['team-a', 'team-b'],
        'operator.allowPrivateNetwork': ['team-a'],
        'writeKeys.keys': { wk1: 'web' },
      },
    ]) {
      const run = await helm(['lint', '--strict', CHART_DIR, ...setFlags(values)]);
      expect(run.stdout + run.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(run.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
      expect(run.code).toBe(0);
    }
  });

  it('renders the operator, the gateway and its Service, the write-keys Secret, RBAC and the user roles', async () => {
    const objects = await render();
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'ClusterRole/dfn-functions-admin',
        'ClusterRole/dfn-functions-viewer',
        'ClusterRole/dfn-operator',
        'ClusterRole/dfn-source-admin',
        'ClusterRoleBinding/dfn-operator',
        'Deployment/dfn-gateway',
        'Deployment/dfn-operator',
        'Role/dfn-operator-lease',
        'Role/dfn-operator-write-keys',
        'RoleBinding/dfn-operator-lease',
        'RoleBinding/dfn-operator-write-keys',
        'Secret/dfn-write-keys',
        'Service/dfn-gateway',
        'ServiceAccount/dfn-gateway',
        'ServiceAccount/dfn-operator',
      ].sort(),
    );
  });

  it('labels every object with the app.kubernetes.io set, and the pods with their component', async () => {
    for (const o of await render()) {
      expect(o.metadata.labels, `${o.kind}/${o.metadata.name}`).toMatchObject({
        'app.kubernetes.io/name': 'dfn',
        'app.kubernetes.io/instance': 'dfn',
        'app.kubernetes.io/version': chart.appVersion,
        'app.kubernetes.io/managed-by': 'Helm',
        'app.kubernetes.io/part-of': 'dfn',
        'helm.sh/chart': `dfn-${chart.version}`,
      });
    }
    const objects = await render();
    for (const component of ['operator', 'gateway']) {
      const d = find(objects, 'Deployment', `dfn-${component}`);
      expect(d.spec.selector.matchLabels['app.kubernetes.io/component']).toBe(component);
      expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
    }
    expect(find(objects, 'Service', 'dfn-gateway').spec.selector).toEqual(
      find(objects, 'Deployment', 'dfn-gateway').spec.selector.matchLabels,
    );
  });

  it('names the dfn image the local kubelet runs, tagged with the appVersion, for the pods and the runners', async () => {
    const objects = await render();
    for (const name of ['dfn-operator', 'dfn-gateway']) {
      expect(container(find(objects, 'Deployment', name)).image).toBe(
        `ghcr.io/dfn-dev/dfn:${chart.appVersion}`,
      );
    }
    expect(args(find(objects, 'Deployment', 'dfn-operator'))).toContain(
      `--runner-image=ghcr.io/dfn-dev/dfn:${chart.appVersion}`,
    );
    const custom = await render({ 'image.tag': '1.2.3', 'runner.image.repository': 'registry.local/dfn' });
    expect(container(find(custom, 'Deployment', 'dfn-gateway')).image).toBe('ghcr.io/dfn-dev/dfn:1.2.3');
    expect(args(find(custom, 'Deployment', 'dfn-operator'))).toContain(
      '--runner-image=registry.local/dfn:1.2.3',
    );
  });

  it('passes NATS, the streams, the write keys and private-network namespaces to the operator', async () => {
    const defaults = args(find(await render(), 'Deployment', 'dfn-operator'));
    expect(defaults).toEqual(
      expect.arrayContaining([
        'operator',
        '--nats-url=nats://nats.nats.svc:4222',
        '--stream-replicas=1',
        '--write-keys-secret=dfn-system/dfn-write-keys',
        '--lease-namespace=dfn-system',
      ]),
    );
    // None by default: functions reach only public addresses.
    expect(defaults.some((a) => a.startsWith('--allow-private-network'))).toBe(false);
    expect(defaults.some((a) => a.startsWith('--namespace'))).toBe(false);
    const set = args(
      find(
        await render({
          'streams.replicas': 3,
          'operator.allowPrivateNetwork': ['staging', 'dev'],
          'operator.watchNamespaces': ['staging'],
          'operator.leaderElection': false,
          'writeKeys.existingSecret': 'my-keys',
        }),
        'Deployment',
        'dfn-operator',
      ),
    );
    expect(set).toEqual(
      expect.arrayContaining([
        '--stream-replicas=3',
        '--allow-private-network=staging,dev',
        '--namespace=staging',
        '--no-leader-elect',
        '--write-keys-secret=dfn-system/my-keys',
      ]),
    );
  });

  it('renders write keys into the Secret the gateway mounts as a file, or uses an existing one', async () => {
    const objects = await render({ 'writeKeys.keys': { wk_live_1: 'web', wk_live_2: 'backend' } });
    const secret = find(objects, 'Secret', 'dfn-write-keys');
    expect(parse(secret.stringData['write-keys.yaml'])).toEqual({ wk_live_1: 'web', wk_live_2: 'backend' });
    const gateway = find(objects, 'Deployment', 'dfn-gateway');
    const volume = gateway.spec.template.spec.volumes.find((v: Manifest) => v.name === 'write-keys');
    expect(volume.secret.secretName).toBe('dfn-write-keys');
    const mount = container(gateway).volumeMounts.find((m: Manifest) => m.name === 'write-keys');
    expect(args(gateway)).toContain(`--write-keys=${mount.mountPath}/write-keys.yaml`);

    const existing = await render({ 'writeKeys.existingSecret': 'my-keys' });
    expect(existing.some((o) => o.kind === 'Secret')).toBe(false);
    expect(
      find(existing, 'Deployment', 'dfn-gateway').spec.template.spec.volumes.find(
        (v: Manifest) => v.name === 'write-keys',
      ).secret.secretName,
    ).toBe('my-keys');
  });

  it('mounts the NATS credentials Secret for the operator and the gateway, and the runners’ for the operator', async () => {
    const objects = await render({
      'nats.credentialsSecret.name': 'nats-creds',
      'nats.runnerCredentialsSecret': { name: 'runner-creds', key: 'runner.creds' },
    });
    const operator = find(objects, 'Deployment', 'dfn-operator');
    expect(args(operator)).toEqual(
      expect.arrayContaining([
        '--nats-creds=/etc/dfn/nats/nats.creds',
        '--runner-nats-creds=/etc/dfn/runner-nats/runner.creds',
      ]),
    );
    const secrets = (d: Manifest) =>
      d.spec.template.spec.volumes
        .filter((v: Manifest) => v.secret)
        .map((v: Manifest) => v.secret.secretName);
    expect(secrets(operator).sort()).toEqual(['nats-creds', 'runner-creds']);
    const gateway = find(objects, 'Deployment', 'dfn-gateway');
    expect(args(gateway)).toContain('--nats-creds=/etc/dfn/nats/nats.creds');
    expect(secrets(gateway).sort()).toEqual(['dfn-write-keys', 'nats-creds']);
    // Runners use the operator's credentials when they have none of their own.
    const shared = args(
      find(await render({ 'nats.credentialsSecret.name': 'nats-creds' }), 'Deployment', 'dfn-operator'),
    );
    expect(shared).toContain('--runner-nats-creds=/etc/dfn/runner-nats/nats.creds');
  });

  it('gives the gateway a pre-stop pause inside a grace period that also covers its shutdown grace', async () => {
    const gateway = find(
      await render({ 'gateway.preStopSeconds': 7, 'gateway.shutdownGraceMs': 20_500 }),
      'Deployment',
      'dfn-gateway',
    );
    expect(container(gateway).lifecycle.preStop).toEqual({ sleep: { seconds: 7 } });
    expect(args(gateway)).toContain('--shutdown-grace=20500');
    expect(gateway.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(7 + 21);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      expect(container(gateway)[probe].httpGet.port).toBe('http');
    }
    expect(container(gateway).readinessProbe.httpGet.path).toBe('/readyz');
    // No Kubernetes credentials in the gateway's pods: it needs none.
    expect(gateway.spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it('runs both pods as non-root with a read-only root and no capabilities', async () => {
    for (const name of ['dfn-operator', 'dfn-gateway']) {
      const d = find(await render(), 'Deployment', name);
      expect(d.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
      expect(container(d).securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
    }
  });
});

describe('runner.resources', () => {
  it('reaches the operator as --runner-resources JSON, and is no flag when empty', async () => {
    const defaults = args(find(await render(), 'Deployment', 'dfn-operator'));
    expect(defaults.some((a) => a.startsWith('--runner-resources'))).toBe(false);
    const resources = { requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '2Gi' } };
    const set = args(find(await render({ 'runner.resources': resources }), 'Deployment', 'dfn-operator'));
    const flag = set.find((a) => a.startsWith('--runner-resources='))!;
    expect(JSON.parse(flag.slice('--runner-resources='.length))).toEqual(resources);
  });
});

describe('values.schema.json', () => {
  const refused = async (values: Record<string, unknown>, message: RegExp) => {
    const run = await helm(['template', 'dfn', CHART_DIR, ...setFlags(values)]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(run.stderr).toMatch(message);
  };

  it('refuses a stream replica count NATS cannot have', async () => {
    await refused({ 'streams.replicas': 0 }, /streams\/replicas/);
    await refused({ 'streams.replicas': '3' }, /streams\/replicas/);
  });

  it('refuses a write key mapped to a source that cannot name a subject, or a key with a colon', async () => {
    await refused({ 'writeKeys.keys': { wk1: 'web site' } }, /writeKeys\/keys/);
    await refused({ 'writeKeys.keys': { 'wk:1': 'web' } }, /writeKeys\/keys/);
  });

  it('refuses private-network namespaces given as a string, and names that are not namespaces', async () => {
    await refused({ 'operator.allowPrivateNetwork': 'staging' }, /operator\/allowPrivateNetwork/);
    await refused({ 'operator.allowPrivateNetwork': ['Staging_1'] }, /operator\/allowPrivateNetwork/);
  });

  it('refuses runner resources that are not requests and limits of quantities', async () => {
    await refused({ 'runner.resources': { request: { cpu: '1' } } }, /runner\/resources/);
    await refused({ 'runner.resources': { limits: { memory: { value: 1 } } } }, /runner\/resources/);
  });

  it('refuses a NATS URL without a scheme and a misspelt value', async () => {
    await refused({ 'nats.url': '127.0.0.1:4222' }, /nats\/url/);
    await refused({ gateway: { replica: 3 } }, /replica/);
  });

  it('refuses two operators without leader election, and write keys that an existing Secret would ignore', async () => {
    await refused({ 'operator.leaderElection': false, 'operator.replicas': 2 }, /operator\/replicas/);
    await refused(
      { 'writeKeys.existingSecret': 'my-keys', 'writeKeys.keys': { wk1: 'web' } },
      /writeKeys\/keys/,
    );
    // Each alone is fine.
    await render({ 'operator.leaderElection': false, 'operator.replicas': 1 });
    await render({ 'operator.replicas': 2 });
    await render({ 'writeKeys.existingSecret': 'my-keys' });
  });

  it('refuses a bad value at helm install too, before anything is created', async () => {
    const run = await helm([
      'install',
      'dfn',
      CHART_DIR,
      '--dry-run=client',
      ...setFlags({ 'streams.replicas': -1 }),
    ]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/streams\/replicas/);
  });
});
