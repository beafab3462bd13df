// A local kubelet (local/kubelet/) for one test file: its own Node on the shared control plane, binding
// and running only the Pods of the file's namespace, with the dfn image mapped to the TypeScript sources.

import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Kubelet } from '../../local/kubelet/kubelet.js';
import { repoRoot } from './dfn.js';
import type { TestNamespace } from './kube.js';

/** The dfn image as the chart will name it; any tag runs the local build. */
export const DFN_IMAGE = 'ghcr.io/dfn-dev/dfn:0.1.0';

/** Pods start `dfn` through tsx (a few seconds each on a loaded machine): their tests get more than vitest's 60 s. */
export const POD_TEST_TIMEOUT_MS = 240_000;

/** `dfn` from the sources (no build step, never stale), as the container's entrypoint. */
export const DFN_FROM_SOURCES = [
  process.execPath,
  '--no-node-snapshot',
  '--import',
  // Absolute: the process runs in its Pod's root, where a bare `tsx` would not resolve.
  import.meta.resolve('tsx'),
  join(repoRoot, 'cli/main.ts'),
];

export interface KubeletLogLine {
  msg: string;
  fields?: Record<string, unknown>;
}

export interface TestKubelet {
  readonly kubelet: Kubelet;
  /** What the kubelet logged (container exits, failures), in order. */
  readonly log: KubeletLogLine[];
}

export function useKubelet(ns: TestNamespace, options: { restartBackoffMs?: number } = {}): TestKubelet {
  let kubelet: Kubelet | undefined;
  const log: KubeletLogLine[] = [];
  beforeAll(async () => {
    const server = new URL(ns.cp.server);
    kubelet = await Kubelet.start({
      kubeConfig: ns.kc,
      nodeName: `node-${ns.name}`,
      images: { repositories: ['ghcr.io/dfn-dev/dfn'], dfn: DFN_FROM_SOURCES },
      apiServer: { host: server.hostname, port: Number(server.port) },
      namespaces: [ns.name],
      logsServer: { cert: ns.cp.kubeletCert, key: ns.cp.kubeletKey, clientCa: ns.cp.caCert },
      log: (msg, fields) => log.push({ msg, ...(fields ? { fields } : {}) }),
      ...options,
    });
  }, 120_000);
  afterAll(async () => {
    await kubelet?.stop();
  }, 60_000);
  return {
    log,
    get kubelet() {
      if (!kubelet) throw new Error('useKubelet: the kubelet starts in beforeAll');
      return kubelet;
    },
  };
}
