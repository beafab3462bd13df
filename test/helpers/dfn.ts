// Runs the `dfn` command as a child process, from the TypeScript sources (no build, so never stale).

import { type ChildProcess, spawn } from 'node:child_process';

export const repoRoot = new URL('../..', import.meta.url).pathname;

export interface DfnRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface DfnOptions {
  env?: Record<string, string>;
  stdin?: string;
  timeoutMs?: number;
  /** Node flags before the script (a benchmark's `--cpu-prof`, say). */
  nodeArgs?: readonly string[];
  /**
   * Run the built `dist/` (what the image ships) instead of the sources through tsx: benchmarks do, so
   * they measure neither tsx's per-closure name helper nor its source maps. The caller builds first.
   */
  built?: boolean;
}

/** The environment without DFN_ / NATS_ variables of the machine running the tests. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('DFN_') && !k.startsWith('NATS_')) env[k] = v;
  }
  return env;
}

export function spawnDfn(args: string[], options: DfnOptions = {}): ChildProcess {
  return spawn(
    process.execPath,
    [
      '--no-node-snapshot',
      ...(options.nodeArgs ?? []),
      ...(options.built ? ['dist/cli/main.js'] : ['--import', 'tsx', 'cli/main.ts']),
      ...args,
    ],
    {
      cwd: repoRoot,
      env: { ...cleanEnv(), ...options.env },
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    },
  );
}

/** Runs `dfn <args>` to completion (killed after timeoutMs). */
export function runDfn(args: string[], options: DfnOptions = {}): Promise<DfnRun> {
  const child = spawnDfn(args, options);
  if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dfn ${args.join(' ')} did not finish in ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
