// `dfn operator` as a child process on the shared control plane, as a Deployment would run it: its JSON log
// lines collected, its HTTP endpoints on a free loopback port, killed by the caller (or by disposeAll).

import type { ChildProcess } from 'node:child_process';
import { spawnDfn } from './dfn.js';
import type { TestNamespace } from './kube.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export interface OperatorProcess {
  name: string;
  child: ChildProcess;
  port: number;
  /** stdout lines, and stderr chunks prefixed `stderr: `. */
  logs: string[];
  exited: Promise<number | null>;
  /** GET a path of its HTTP server: /metrics as text, the others as JSON. */
  get(path: string): Promise<{ status: number; body: any }>;
}

export interface OperatorProcessOptions {
  ns: TestNamespace;
  natsUrl: string;
  /** Sets POD_NAME, which the lease identity starts with. */
  name: string;
  /** Flags after the common ones (kubeconfig, namespace, NATS, memory streams, the HTTP address). */
  args: string[];
}

const started: OperatorProcess[] = [];

/** Starts `dfn operator` and waits until it answers /healthz. */
export async function startOperatorProcess(options: OperatorProcessOptions): Promise<OperatorProcess> {
  const { ns, natsUrl, name, args } = options;
  const port = await freePort();
  const child = spawnDfn(
    [
      'operator',
      '--kubeconfig',
      ns.cp.kubeconfigPath,
      '--namespace',
      ns.name,
      '--nats-url',
      natsUrl,
      '--stream-storage',
      'memory',
      '--http-host',
      '127.0.0.1',
      '--http-port',
      String(port),
      ...args,
    ],
    { env: { POD_NAME: name } },
  );
  const logs: string[] = [];
  let buffer = '';
  child.stdout!.on('data', (d) => {
    buffer += d;
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    logs.push(...lines);
  });
  child.stderr!.on('data', (d) => logs.push(`stderr: ${d}`));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const get = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: r.status, body: path === '/metrics' ? await r.text() : await r.json() };
  };
  const p: OperatorProcess = { name, child, port, logs, exited, get };
  started.push(p);
  await waitFor(
    () => `${name} to serve /healthz (logs: ${logs.slice(-5).join('\n')})`,
    () =>
      fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      ),
    60_000,
  );
  return p;
}

/** SIGKILLs every operator process still running (afterAll). */
export function killOperatorProcesses(): void {
  for (const p of started)
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
}
