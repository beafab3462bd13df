// vitest global set-up: one Kubernetes control plane for the whole run, with our CRDs applied before
// kube-controller-manager starts. It starts in the background, so files that never touch it do not wait.

import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ControlPlane, dfnCrds } from '../../local/control-plane/control-plane.js';
import { FAILED_FILE, READY_FILE, type ReadyInfo } from '../helpers/kube-state.js';

/** Written whole, then renamed: a worker polling for the file never reads half of it. */
async function publish(path: string, content: string): Promise<void> {
  await writeFile(`${path}.tmp`, content);
  await rename(`${path}.tmp`, path);
}

export default async function setup(project: TestProject) {
  const stateDir = await mkdtemp(join(tmpdir(), 'dfn-test-kube-'));
  project.provide('kubeStateDir', stateDir);
  const starting = (async () => {
    try {
      const cp = await ControlPlane.start({ crds: await dfnCrds(), dir: join(stateDir, 'control-plane') });
      const info: ReadyInfo = {
        kubeconfigPath: cp.kubeconfigPath,
        server: cp.endpoints.server,
        kubeletCert: cp.certs.kubeletCert,
        kubeletKey: cp.certs.kubeletKey,
        caCert: cp.certs.caCert,
      };
      await publish(join(stateDir, READY_FILE), JSON.stringify(info));
      return cp;
    } catch (err) {
      await publish(join(stateDir, FAILED_FILE), String((err as Error).stack ?? err));
      return undefined;
    }
  })();
  return async () => {
    await (await starting)?.stop();
    await rm(stateDir, { recursive: true, force: true });
  };
}
