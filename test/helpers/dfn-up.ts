// `dfn up` driven as a user drives it: a child process on free ports, its printed instructions parsed (the
// KUBECONFIG to export, the gateway URL, the write key), kubectl run with that KUBECONFIG, Ctrl-C to stop.

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TetheredProcess } from '../../local/process.js';
import type { UpPorts } from '../../local/up/ports.js';
import { PORT_FLAGS } from '../../local/up/ports.js';
import { cleanEnv, repoRoot } from './dfn.js';
import { freePort } from './ports.js';
import { kubectlPath } from './tools.js';
import { waitFor } from './wait.js';

/** Starting the stack: etcd, apiserver, KCM, nats, the kubelet, helm and two Pods through tsx on a busy machine. */
export const UP_TIMEOUT_MS = 600_000;

export interface UpReady {
  kubeconfig: string;
  gatewayUrl: string;
  writeKey: string;
  source: string;
  natsUrl: string;
}

export async function freeUpPorts(): Promise<UpPorts> {
  const ports = {} as UpPorts;
  for (const key of Object.keys(PORT_FLAGS) as (keyof UpPorts)[]) ports[key] = await freePort();
  return ports;
}

export const portArgs = (ports: UpPorts) =>
  (Object.keys(PORT_FLAGS) as (keyof UpPorts)[]).flatMap((k) => [PORT_FLAGS[k], String(ports[k])]);

export class DfnUp {
  private constructor(
    private readonly proc: TetheredProcess,
    private readonly logFile: string,
    readonly pid: number,
  ) {}

  /**
   * `dfn up <args>` from the sources, tethered (local/process.ts): a test worker that dies takes the whole
   * stack with it. Its stdout and stderr go to one file, read back as `output`.
   */
  static async start(args: string[], env: Record<string, string>, logFile: string): Promise<DfnUp> {
    const proc = new TetheredProcess(
      process.execPath,
      ['--no-node-snapshot', '--import', 'tsx', 'cli/main.ts', 'up', ...args],
      { cwd: repoRoot, env: { ...cleanEnv(), ...env }, logFile },
    );
    return new DfnUp(proc, logFile, await proc.pid);
  }

  /** What it printed so far (stdout and stderr). */
  get output(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  get running(): boolean {
    return this.proc.running;
  }

  /** Its exit code (null when a signal ended it). */
  get exited(): Promise<number | null> {
    return this.proc.exited.then((s) => s.code);
  }

  /** Until it printed that it is up; the values it printed. Fails early, with its output, if it exits. */
  async ready(timeoutMs = UP_TIMEOUT_MS): Promise<UpReady> {
    await waitFor(
      () => `dfn up to be ready:\n${this.output}`,
      () => {
        const out = this.output;
        if (!this.proc.running) throw new Error(`dfn up exited:\n${out}`);
        return out.includes('dfn is up.');
      },
      timeoutMs,
      250,
    );
    const out = this.output.slice(this.output.lastIndexOf('dfn up '));
    const grab = (re: RegExp) => {
      const m = re.exec(out);
      if (!m) throw new Error(`dfn up did not print ${re}:\n${out}`);
      return m;
    };
    const key = grab(/Write key {2}(\S+) {3}\(source "([^"]+)"\)/);
    return {
      kubeconfig: grab(/export KUBECONFIG=(\S+)/)[1]!,
      gatewayUrl: grab(/Gateway {4}(\S+)/)[1]!,
      writeKey: key[1]!,
      source: key[2]!,
      natsUrl: grab(/NATS {7}(\S+)/)[1]!,
    };
  }

  /** Ctrl-C, and the exit status once it has stopped. */
  async interrupt(timeoutMs = 120_000): Promise<number | null> {
    this.proc.signal('SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`dfn up did not stop:\n${this.output}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL of the whole group (after a failed test). */
  async kill(): Promise<void> {
    await this.proc.stop(0);
  }
}

/** Every descendant of `pid` (children, their children, …), from /proc. */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(join('/proc', entry, 'stat'), 'utf8');
      // The command name may hold spaces and parentheses: fields follow the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parents.get(ppid) ?? [];
      list.push(Number(entry));
      parents.set(ppid, list);
    } catch {
      // Ended while we looked.
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of parents.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The built kubectl with the KUBECONFIG `dfn up` printed (and a cache dir that is not ~/.kube). */
export function kubectlFor(
  kubeconfig: string,
  home: string,
): (args: string[], input?: string) => Promise<KubectlResult> {
  return (args, input) =>
    new Promise((resolve, reject) => {
      const child = execFile(
        kubectlPath(),
        args,
        {
          timeout: 120_000,
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: home,
            KUBECONFIG: kubeconfig,
            KUBECACHEDIR: join(home, 'kube-cache'),
          },
        },
        (err, stdout, stderr) => {
          const code = err ? ((err as { code?: number }).code ?? 1) : 0;
          if (typeof code !== 'number') reject(err);
          else resolve({ code, stdout, stderr });
        },
      );
      if (input !== undefined) child.stdin!.end(input);
    });
}
