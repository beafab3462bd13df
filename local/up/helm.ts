// helm, as `dfn up` runs it: the binary from the tools cache (local/tools.ts), the stack's kubeconfig, and
// helm's own cache, config and data directories under the state directory (nothing written to $HOME).

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { helmBinary } from '../tools.js';

export class HelmError extends Error {
  override readonly name = 'HelmError';
  readonly code = 'DFN_UP_HELM';
}

export interface HelmContext {
  kubeconfig: string;
  /** helm's cache, config and data go under it. */
  home: string;
}

export function helmEnv(ctx: HelmContext): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: ctx.home,
    KUBECONFIG: ctx.kubeconfig,
    HELM_CACHE_HOME: join(ctx.home, 'cache'),
    HELM_CONFIG_HOME: join(ctx.home, 'config'),
    HELM_DATA_HOME: join(ctx.home, 'data'),
    KUBECACHEDIR: join(ctx.home, 'kube-cache'),
  };
}

export function helm(ctx: HelmContext, args: string[], timeoutMs = 300_000): Promise<string> {
  const binary = helmBinary();
  return new Promise((resolve, reject) => {
    execFile(binary, args, { env: helmEnv(ctx), timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new HelmError(`helm ${args[0]} failed: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}

/** `helm upgrade --install`: a first run installs, a run on a kept state directory upgrades in place. */
export function installChart(
  ctx: HelmContext,
  release: { name: string; namespace: string; chart: string; valuesFile: string },
): Promise<string> {
  return helm(ctx, [
    'upgrade',
    '--install',
    release.name,
    release.chart,
    '--namespace',
    release.namespace,
    '--create-namespace',
    '--values',
    release.valuesFile,
  ]);
}
