// The built helm (never one on PATH), run on the chart as a user would: lint, template, install. Its
// cache, config and data go to a directory of the run, not to ~/.cache and ~/.config.

import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../helpers/dfn.js';
import { helmPath } from '../helpers/tools.js';

export const CHART_DIR = join(repoRoot, 'charts/dfn');

export interface HelmRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * What helm printed on stderr that a user would have to read: all of it but client-go's report of a
 * watch that helm itself cancelled when the install was done ("Warning: watch ended with error ...
 * context canceled"), which it prints now and then, whatever the chart.
 */
export function stderrOf(run: HelmRun): string {
  return run.stderr
    .split('\n')
    .filter((line) => !(line.includes('watch ended with error') && line.includes('context canceled')))
    .join('\n')
    .trim();
}

const home = mkdtempSync(join(tmpdir(), 'dfn-helm-'));

export function helm(
  args: string[],
  options: { kubeconfig?: string; timeoutMs?: number } = {},
): Promise<HelmRun> {
  return new Promise((resolve, reject) => {
    execFile(
      helmPath(),
      args,
      {
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 32 * 1024 * 1024,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          HELM_CACHE_HOME: join(home, 'cache'),
          HELM_CONFIG_HOME: join(home, 'config'),
          HELM_DATA_HOME: join(home, 'data'),
          ...(options.kubeconfig ? { KUBECONFIG: options.kubeconfig } : {}),
        },
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}

/** `--set`-style flags from a values object, as JSON (--set-json keeps types: numbers, lists, maps). */
export function setFlags(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set-json', `${k}=${JSON.stringify(v)}`]);
}

export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: any;
};

/** The objects `helm template` renders with these values (fails the test when it does not render). */
export async function render(
  values: Record<string, unknown> = {},
  options: { namespace?: string; release?: string } = {},
): Promise<Manifest[]> {
  const run = await helm([
    'template',
    options.release ?? 'dfn',
    CHART_DIR,
    '--namespace',
    options.namespace ?? 'dfn-system',
    ...setFlags(values),
  ]);
  if (run.code !== 0) throw new Error(`helm template failed (${run.code}):\n${run.stderr}`);
  return parseAllDocuments(run.stdout)
    .map((d) => d.toJS() as Manifest)
    .filter(Boolean);
}

export const find = (objects: Manifest[], kind: string, name: string): Manifest => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found)
    throw new Error(
      `no ${kind} ${name} in: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`,
    );
  return found;
};
