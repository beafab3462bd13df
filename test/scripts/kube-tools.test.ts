// scripts/kube-tools.sh, the set-up's Kubernetes step: from an empty tools directory (with the shared Go
// build cache, so a relink, not a ten-minute build) the binaries come out at the pinned versions; a second
// run reuses them; prebuilt binaries named by KUBEBUILDER_ASSETS are used instead of building.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { kubeBinary, toolsEnv } from '../../local/tools.js';
import { cleanEnv, repoRoot } from '../helpers/dfn.js';
import { helmPath } from '../helpers/tools.js';

const run = promisify(execFile);
const versions = toolsEnv();
// A cold build takes 10-15 minutes on 2 cores; with the Go cache the set-up filled it takes seconds, but
// a loaded machine may stretch that.
const BUILD_TIMEOUT_MS = 20 * 60_000;

async function kubeTools(env: Record<string, string>): Promise<string> {
  const { stdout, stderr } = await run('bash', ['scripts/kube-tools.sh'], {
    cwd: repoRoot,
    env: { ...cleanEnv(), ...env },
    timeout: BUILD_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout + stderr;
}

async function versionOf(binary: string): Promise<string> {
  const args = binary.endsWith('kubectl')
    ? ['version', '--client']
    : binary.endsWith('helm')
      ? ['version', '--short']
      : ['--version'];
  const { stdout } = await run(binary, args);
  return stdout;
}

const dirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('scripts/kube-tools.sh', () => {
  it(
    'builds every binary at its pinned version into an empty tools directory, then reuses them',
    async () => {
      const tools = tempDir('dfn-tools-');
      const first = await kubeTools({ DFN_TOOLS_DIR: tools, KUBEBUILDER_ASSETS: '' });
      expect(first).toContain('==> building etcd kube-apiserver kube-controller-manager kubectl');
      expect(first).toContain(`==> building helm ${versions.HELM_VERSION}`);

      const env = { ...process.env, DFN_TOOLS_DIR: tools, DFN_KUBE_ASSETS: '', KUBEBUILDER_ASSETS: '' };
      const kubeDir = join(tools, `kubernetes-${versions.KUBERNETES_VERSION}`);
      for (const name of ['kube-apiserver', 'kube-controller-manager', 'kubectl'] as const) {
        expect(kubeBinary(name, env)).toBe(join(kubeDir, name));
        expect(await versionOf(kubeBinary(name, env))).toContain(versions.KUBERNETES_VERSION);
      }
      expect(await versionOf(kubeBinary('etcd', env))).toContain(
        `etcd Version: ${versions.ETCD_VERSION!.slice(1)}`,
      );
      expect(await versionOf(join(tools, `helm-${versions.HELM_VERSION}`, 'helm'))).toContain(
        versions.HELM_VERSION,
      );

      const second = await kubeTools({ DFN_TOOLS_DIR: tools, KUBEBUILDER_ASSETS: '' });
      expect(second).not.toContain('==> building');
      for (const name of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl']) {
        expect(second).toContain(`${name}: cached in ${kubeDir}`);
      }
      expect(second).toContain(`helm: cached in ${join(tools, `helm-${versions.HELM_VERSION}`)}`);
    },
    BUILD_TIMEOUT_MS * 2,
  );

  it(
    'uses prebuilt binaries from KUBEBUILDER_ASSETS and builds only what they lack',
    async () => {
      // envtest's assets: etcd, kube-apiserver and kubectl, but no kube-controller-manager.
      const assets = tempDir('dfn-assets-');
      for (const name of ['etcd', 'kube-apiserver', 'kubectl'] as const)
        symlinkSync(kubeBinary(name), join(assets, name));
      // helm is cached already, so only the controller manager is left to build.
      const tools = tempDir('dfn-tools-');
      mkdirSync(join(tools, `helm-${versions.HELM_VERSION}`));
      symlinkSync(helmPath(), join(tools, `helm-${versions.HELM_VERSION}`, 'helm'));

      const out = await kubeTools({ DFN_TOOLS_DIR: tools, KUBEBUILDER_ASSETS: assets });
      for (const name of ['etcd', 'kube-apiserver', 'kubectl'])
        expect(out).toContain(`${name}: prebuilt in ${assets}`);
      expect(out).toContain('==> building kube-controller-manager (');
      expect(out).toContain('helm: cached');

      const kubeDir = join(tools, `kubernetes-${versions.KUBERNETES_VERSION}`);
      expect(existsSync(join(kubeDir, 'kube-apiserver'))).toBe(false);
      // The product resolves binaries the same way.
      const env = { ...process.env, DFN_TOOLS_DIR: tools, KUBEBUILDER_ASSETS: assets, DFN_KUBE_ASSETS: '' };
      expect(kubeBinary('kube-apiserver', env)).toBe(join(assets, 'kube-apiserver'));
      expect(kubeBinary('kube-controller-manager', env)).toBe(join(kubeDir, 'kube-controller-manager'));
    },
    BUILD_TIMEOUT_MS,
  );
});
