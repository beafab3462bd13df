// `dfn up` driven as a user drives it: a child process on free ports, its printed instructions parsed (the
// KUBECONFIG to export, the gateway URL, the write key), kubectl run with that KUBECONFIG, Ctrl-C to stop.

import { type ChildProcess, execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { UpPorts } from '../../local/up/ports.js';
import { PORT_FLAGS } from '../../local/up/ports.js';
import { spawnDfn } from './dfn.js';
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
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d) => (this.stdout += d));
    child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  static start(args: string[], env: Record<string, string>): DfnUp {
    return new DfnUp(spawnDfn(['up', ...args], { env }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Until it printed that it is up; the values it printed. Fails early, with its output, if it exits. */
  async ready(timeoutMs = UP_TIMEOUT_MS): Promise<UpReady> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    await waitFor(
      () => `dfn up to be ready:\n${this.stdout}\n${this.stderr}`,
      () => {
        if (exited) throw new Error(`dfn up exited:\n${this.stdout}\n${this.stderr}`);
        return this.stdout.includes('dfn is up.');
      },
      timeoutMs,
      250,
    );
    const grab = (re: RegExp) => {
      const m = re.exec(this.stdout);
      if (!m) throw new Error(`dfn up did not print ${re}:\n${this.stdout}`);
      return m[1]!;
    };
    const key = /Write key {2}(\S+) {3}\(source "([^"]+)"\)/.exec(this.stdout);
    return {
      kubeconfig: grab(/export KUBECONFIG=(\S+)/),
      gatewayUrl: grab(/Gateway {4}(\S+)/),
      writeKey: key?.[1] ?? grab(/Write key {2}(\S+)/),
      source: key?.[2] ?? '',
      natsUrl: grab(/NATS {7}(\S+)/),
    };
  }

  /** Ctrl-C, and the exit status once it has stopped. */
  async interrupt(timeoutMs = 120_000): Promise<number | null> {
    this.child.kill('SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`dfn up did not stop:\n${this.stdout}\n${this.stderr}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    this.child.kill('SIGKILL');
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
