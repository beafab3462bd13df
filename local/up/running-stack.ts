// The record of a running `dfn up`: written when the stack is ready, removed when it stops, in a known place
// (DFN_HOME, default ~/.dfn), so `dfn deliveries`, `dfn replay` and friends find its NATS without flags.

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface RunningStack {
  /** The pid of the `dfn up` process: a record whose process is gone is stale and ignored. */
  pid: number;
  natsUrl: string;
  kubeconfig: string;
  gatewayUrl: string;
  writeKey: string;
  source: string;
  stateDir: string;
  /** The chart's release and namespace. */
  release: string;
  namespace: string;
  startedAt: string;
}

export function dfnHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.DFN_HOME || join(homedir(), '.dfn');
}

export const runningStackFile = (env: NodeJS.ProcessEnv = process.env) => join(dfnHome(env), 'up.json');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running `dfn up`, or undefined when none runs (no record, or its process is gone). */
export function readRunningStack(env: NodeJS.ProcessEnv = process.env): RunningStack | undefined {
  let record: RunningStack;
  try {
    record = JSON.parse(readFileSync(runningStackFile(env), 'utf8')) as RunningStack;
  } catch {
    return undefined;
  }
  return Number.isInteger(record.pid) && alive(record.pid) ? record : undefined;
}

/** Written whole then renamed: a reader never sees half a record. */
export function writeRunningStack(record: RunningStack, env: NodeJS.ProcessEnv = process.env): void {
  const file = runningStackFile(env);
  mkdirSync(dfnHome(env), { recursive: true });
  writeFileSync(`${file}.${process.pid}.tmp`, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.${process.pid}.tmp`, file);
}

/** Removes the record if it is this process's own (another `dfn up` may have replaced it). */
export function removeRunningStack(pid: number, env: NodeJS.ProcessEnv = process.env): void {
  try {
    const record = JSON.parse(readFileSync(runningStackFile(env), 'utf8')) as RunningStack;
    if (record.pid !== pid) return;
  } catch {
    return;
  }
  rmSync(runningStackFile(env), { force: true });
}
