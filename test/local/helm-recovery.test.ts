// `dfn up` stopped while helm installs or upgrades its release (Ctrl-C, kill -9, a closed terminal) must not
// leave a state directory that every later `dfn up` fails on. A real helm is killed with SIGKILL while its
// release is pending, on the shared control plane; then what `dfn up` runs before installing
// (recoverInterruptedRelease, then installChart) must bring the release to "deployed".
// The Deployment waited for can never be ready (its Pod selects a node that does not exist), so the
// pending state lasts as long as the test needs it to, whatever the machine's speed.

import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helmBinary } from '../../local/tools.js';
import {
  type HelmContext,
  helm,
  helmEnv,
  installChart,
  recoverInterruptedRelease,
  releaseStatus,
} from '../../local/up/helm.js';
import { CHART_DIR } from '../chart/helm.js';
import { kubectl, useNamespace } from '../helpers/kube.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('helm-recovery');
let work: string;
let ctx: HelmContext;
let valuesFile: string;

/** Values under which nothing the chart starts can ever be ready, so `--wait` waits until killed. */
const NEVER_READY = [
  '--set',
  'gateway.replicas=0',
  '--set',
  'operator.replicas=1',
  '--set-json',
  'operator.nodeSelector={"dfn.dev/node":"nowhere"}',
];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'dfn-helm-recovery-'));
  ctx = { kubeconfig: ns.cp.kubeconfigPath, home: join(work, 'helm') };
  // What dfn up installs with: nothing waits on readiness, so its install returns once applied.
  valuesFile = join(work, 'values.yaml');
  writeFileSync(valuesFile, 'gateway:\n  replicas: 0\noperator:\n  replicas: 0\n');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** helm `verb` with --wait on the never-ready values, killed with `signal` once the release is pending. */
async function killWhilePending(
  release: string,
  verb: 'install' | 'upgrade' | 'uninstall',
  pending: string,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  const args =
    verb === 'uninstall'
      ? [verb, release, '--namespace', ns.name, '--wait', '--timeout', '10m']
      : [verb, release, CHART_DIR, '--namespace', ns.name, ...NEVER_READY, '--wait', '--timeout', '10m'];
  const child: ChildProcess = execFile(helmBinary(), args, { env: helmEnv(ctx) });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  try {
    await waitFor(
      `release ${release} ${pending}`,
      async () => (await releaseStatus(ctx, { name: release, namespace: ns.name })) === pending,
      60_000,
      100,
    );
  } finally {
    child.kill(signal);
    await exited;
  }
}

describe('a release left pending by a dfn up that was killed', () => {
  it('an install cut short: removed, then installed anew', { timeout: 180_000 }, async () => {
    const release = { name: `${ns.name}-i`, namespace: ns.name };
    await killWhilePending(release.name, 'install', 'pending-install');
    // What a later dfn up would run into without the recovery.
    await expect(installChart(ctx, { ...release, chart: CHART_DIR, valuesFile })).rejects.toThrow(
      /another operation .* is in progress/,
    );

    expect(await recoverInterruptedRelease(ctx, release)).toBe(
      `removed release ${release.name}: an earlier dfn up was stopped while installing it`,
    );
    await installChart(ctx, { ...release, chart: CHART_DIR, valuesFile });
    expect(await releaseStatus(ctx, release)).toBe('deployed');
    // Nothing left to recover once it is deployed.
    expect(await recoverInterruptedRelease(ctx, release)).toBeUndefined();
  });

  it('an upgrade cut short: rolled back, then upgraded', { timeout: 180_000 }, async () => {
    const release = { name: `${ns.name}-u`, namespace: ns.name };
    await installChart(ctx, { ...release, chart: CHART_DIR, valuesFile });
    await killWhilePending(release.name, 'upgrade', 'pending-upgrade');
    await expect(installChart(ctx, { ...release, chart: CHART_DIR, valuesFile })).rejects.toThrow(
      /another operation .* is in progress/,
    );

    expect(await recoverInterruptedRelease(ctx, release)).toBe(
      `rolled release ${release.name} back: an earlier dfn up was stopped while upgrading it`,
    );
    await installChart(ctx, { ...release, chart: CHART_DIR, valuesFile });
    expect(await releaseStatus(ctx, release)).toBe('deployed');
    // The upgrade that landed is dfn up's own values: the operator scaled to 0, not the killed upgrade's 1.
    const values = JSON.parse(
      await helm(ctx, ['get', 'values', release.name, '--namespace', ns.name, '--output', 'json']),
    ) as { operator?: { replicas?: number } };
    expect(values.operator?.replicas).toBe(0);
  });

  it('its recovery cut short in turn (killed while uninstalling): removed, then installed', {
    timeout: 180_000,
  }, async () => {
    const release = { name: `${ns.name}-r`, namespace: ns.name };
    await installChart(ctx, { ...release, chart: CHART_DIR, valuesFile });
    // A finalizer on one of its objects holds `helm uninstall --wait` until it is killed.
    const listed = await kubectl(
      ['get', 'serviceaccounts', '-l', `app.kubernetes.io/instance=${release.name}`, '-o', 'name'],
      { namespace: ns.name },
    );
    const held = listed.stdout.trim().split('\n')[0]!;
    const finalizers = (list: string[] | null) =>
      kubectl(['patch', held, '--type=merge', '-p', JSON.stringify({ metadata: { finalizers: list } })], {
        namespace: ns.name,
      });
    await finalizers(['dfn.dev/test-hold']);
    await killWhilePending(release.name, 'uninstall', 'uninstalling');
    await finalizers(null);
    await expect(installChart(ctx, { ...release, chart: CHART_DIR, valuesFile })).rejects.toThrow(
      /has no deployed releases/,
    );

    expect(await recoverInterruptedRelease(ctx, release)).toBe(
      `removed release ${release.name}: an earlier dfn up was stopped while removing it`,
    );
    await installChart(ctx, { ...release, chart: CHART_DIR, valuesFile });
    expect(await releaseStatus(ctx, release)).toBe('deployed');
  });

  it('helm stopped by Ctrl-C marks its install failed, and the next install takes it over', {
    timeout: 180_000,
  }, async () => {
    const release = { name: `${ns.name}-c`, namespace: ns.name };
    await killWhilePending(release.name, 'install', 'pending-install', 'SIGINT');
    expect(await releaseStatus(ctx, release)).toBe('failed');
    expect(await recoverInterruptedRelease(ctx, release)).toBeUndefined();
    await installChart(ctx, { ...release, chart: CHART_DIR, valuesFile });
    expect(await releaseStatus(ctx, release)).toBe('deployed');
  });

  it('no release yet: nothing to do', async () => {
    expect(
      await recoverInterruptedRelease(ctx, { name: `${ns.name}-none`, namespace: ns.name }),
    ).toBeUndefined();
  });
});
