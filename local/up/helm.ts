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

export interface Release {
  name: string;
  namespace: string;
}

/** The status helm records for the release's latest revision ("deployed", "pending-install", ...), if any. */
export async function releaseStatus(ctx: HelmContext, release: Release): Promise<string | undefined> {
  try {
    const out = await helm(ctx, [
      'status',
      release.name,
      '--namespace',
      release.namespace,
      '--output',
      'json',
    ]);
    return (JSON.parse(out) as { info?: { status?: string } }).info?.status;
  } catch (err) {
    // helm's own words for no such release; any other failure (an unreachable API server) is not that.
    if (err instanceof HelmError && /release: not found/.test(err.message)) return undefined;
    throw err;
  }
}

/**
 * A `dfn up` killed while helm installed or upgraded (Ctrl-C, kill -9, a closed terminal) leaves the
 * release's latest revision pending, and helm refuses every later install or upgrade of it ("another
 * operation (install/upgrade/rollback) is in progress"). The API server was started by this `dfn up` a
 * moment before (its etcd holds the state directory's data, so no other `dfn up` can share it), so a
 * pending revision found before installing is such a leftover, never another helm at work: an install
 * or an uninstall cut short is uninstalled, an upgrade or a rollback cut short is rolled back to the
 * revision before it. (A helm stopped by Ctrl-C marks its release failed, which `upgrade --install` takes.)
 * Returns what was done, for the progress output.
 */
export async function recoverInterruptedRelease(
  ctx: HelmContext,
  release: Release,
): Promise<string | undefined> {
  const status = await releaseStatus(ctx, release);
  const where = ['--namespace', release.namespace];
  if (status === 'pending-install') {
    await helm(ctx, ['uninstall', release.name, ...where, '--wait']);
    return `removed release ${release.name}: an earlier dfn up was stopped while installing it`;
  }
  if (status === 'uninstalling') {
    // Stopped during the uninstall above: what is left of the release goes the same way.
    await helm(ctx, ['uninstall', release.name, ...where, '--wait']);
    return `removed release ${release.name}: an earlier dfn up was stopped while removing it`;
  }
  if (status === 'pending-upgrade' || status === 'pending-rollback') {
    await helm(ctx, ['rollback', release.name, ...where]);
    return `rolled release ${release.name} back: an earlier dfn up was stopped while upgrading it`;
  }
  return undefined;
}

/** `helm upgrade --install`: a first run installs, a run on a kept state directory upgrades in place. */
export function installChart(
  ctx: HelmContext,
  release: Release & { chart: string; valuesFile: string },
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
