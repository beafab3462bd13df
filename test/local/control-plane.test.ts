// The local control plane (local/control-plane/): etcd, kube-apiserver and kube-controller-manager from the
// built binaries, serving with RBAC and running controllers, and gone without a trace when stopped or killed.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ControlPlane } from '../../local/control-plane/control-plane.js';
import { ToolNotFoundError, toolsEnv } from '../../local/tools.js';
import { repoRoot } from '../helpers/dfn.js';
import { deployment } from '../helpers/kube.js';
import { alive } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });

const ports = (cp: Pick<ControlPlane, 'endpoints'>) => [
  cp.endpoints.apiserverPort,
  cp.endpoints.etcdPort,
  cp.endpoints.etcdPeerPort,
  cp.endpoints.controllerManagerPort,
];

describe('the local control plane', () => {
  it('serves the pinned version with RBAC and controllers, then stops leaving no process, port or file', async () => {
    const cp = await ControlPlane.start();
    const pids = Object.values(await cp.pids());
    try {
      const kc = cp.kubeConfig();
      const version = await kc.makeApiClient(VersionApi).getCode();
      expect(version.gitVersion).toBe(toolsEnv().KUBERNETES_VERSION);

      // RBAC: a ServiceAccount's token authenticates, and grants nothing it was not given.
      const core = kc.makeApiClient(CoreV1Api);
      await waitFor('the default ServiceAccount', () =>
        core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' }).then(
          () => true,
          () => false,
        ),
      );
      const request = await core.createNamespacedServiceAccountToken({
        name: 'default',
        namespace: 'default',
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      });
      const asDefault = new KubeConfig();
      asDefault.loadFromClusterAndUser(
        { name: 'local', server: cp.endpoints.server, caFile: cp.certs.caCert, skipTLSVerify: false },
        { name: 'default-sa', token: request.status!.token },
      );
      await expect(
        asDefault.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: 'default' }),
      ).rejects.toMatchObject({ code: 403 });
      // kube-controller-manager: a Deployment becomes a ReplicaSet and a Pod (Pending: no kubelet here).
      const apps = kc.makeApiClient(AppsV1Api);
      await apps.createNamespacedDeployment({
        namespace: 'default',
        body: deployment('web', { containers: [{ name: 'web', image: 'example.com/web:1' }] }),
      });
      const pods = await waitFor('the Deployment to make a Pod', async () => {
        const list = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'default' });
        return list.items.length ? list.items : undefined;
      });
      expect(pods[0]!.metadata!.ownerReferences![0]!.kind).toBe('ReplicaSet');
      for (const port of ports(cp)) expect(await listening(port)).toBe(true);
    } finally {
      await cp.stop();
    }
    // Gone once reaped by their tether (a SIGKILLed one may be a zombie for a moment).
    await waitFor('every component to be gone', () => pids.every((pid) => !alive(pid)), 10_000);
    for (const port of ports(cp)) expect(await listening(port), `port ${port}`).toBe(false);
    expect(existsSync(cp.dir)).toBe(false);
  });

  it('dies with the process that started it, even when that one is killed with SIGKILL', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/local/fixtures/control-plane-child.ts'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const started = await waitFor(
      'the child to start its control plane',
      () => out.includes('\n') && JSON.parse(out),
      90_000,
    );
    const pids = Object.values(started.pids as Record<string, number>);
    for (const pid of pids) expect(alive(pid)).toBe(true);
    child.kill('SIGKILL');
    try {
      await waitFor('every component to end after its parent', () => pids.every((pid) => !alive(pid)));
      for (const port of ports(started)) expect(await listening(port)).toBe(false);
    } finally {
      // A SIGKILLed parent cannot remove its temp dir: that much is left behind.
      rmSync(started.dir, { recursive: true, force: true });
    }
  });

  it('says how to get the binaries when they are missing', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'dfn-no-tools-'));
    try {
      const start = ControlPlane.start({
        env: { ...process.env, DFN_TOOLS_DIR: empty, DFN_KUBE_ASSETS: empty },
      });
      await expect(start).rejects.toThrow(ToolNotFoundError);
      await expect(start).rejects.toThrow(/etcd not found .* run `npm run setup` first/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
