// `dfn up` refusing to start, and stopping when interrupted while it starts: a taken port is one error
// naming its flag, a second `dfn up` is refused, missing binaries say how to get them, and a Ctrl-C during
// the start leaves no process behind. (The whole stack running is test/e2e/dfn-up.test.ts.)

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRunningStack } from '../../local/up/running-stack.js';
import { runDfn } from '../helpers/dfn.js';
import { DfnUp, descendants, freeUpPorts, portArgs } from '../helpers/dfn-up.js';
import { alive } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

let work: string;
let home: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'dfn-up-test-'));
  home = join(work, 'home');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('dfn up refuses to start', () => {
  let holder: Server;
  afterAll(() => new Promise<void>((r) => (holder ? holder.close(() => r()) : r())));

  it('when a port is taken: one error naming the port, what it is for and the flag that moves it', async () => {
    const ports = await freeUpPorts();
    holder = createServer();
    await new Promise<void>((r) => holder.listen(ports.nats, '127.0.0.1', r));
    const run = await runDfn(['up', ...portArgs(ports), '--state-dir', join(work, 'taken')], {
      env: { DFN_HOME: home },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `dfn up: port ${ports.nats} (nats) is already in use on 127.0.0.1: stop what holds it, or choose another with --nats-port\n`,
    );
    // Checked before anything started or was written.
    expect(run.stdout).not.toContain('==>');
    expect(existsSync(join(work, 'taken'))).toBe(false);
  });

  it('when two ports are the same', async () => {
    const ports = await freeUpPorts();
    const run = await runDfn(['up', ...portArgs({ ...ports, etcd: ports.apiserver })], {
      env: { DFN_HOME: home },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `dfn up: --etcd-port and --apiserver-port are both ${ports.apiserver}: choose two ports\n`,
    );
  });

  it('when another dfn up runs (its record names a live process)', async () => {
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const otherHome = join(work, 'other-home');
    try {
      writeRunningStack(
        {
          pid: other.pid!,
          natsUrl: 'nats://127.0.0.1:4222',
          kubeconfig: '/nowhere',
          gatewayUrl: 'http://127.0.0.1:8080',
          writeKey: 'wk',
          source: 'web',
          stateDir: '/var/tmp/elsewhere',
          release: 'dfn',
          namespace: 'dfn-system',
          startedAt: new Date().toISOString(),
        },
        { DFN_HOME: otherHome },
      );
      const run = await runDfn(['up', ...portArgs(await freeUpPorts())], { env: { DFN_HOME: otherHome } });
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(
        `dfn up: dfn up is already running (pid ${other.pid}, state /var/tmp/elsewhere): stop it first (Ctrl-C there)\n`,
      );
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('when the binaries were never built, saying how to build them', async () => {
    const run = await runDfn(['up', ...portArgs(await freeUpPorts())], {
      env: { DFN_HOME: home, DFN_TOOLS_DIR: join(work, 'no-tools'), KUBEBUILDER_ASSETS: '' },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^dfn up: nats-server not found \(looked in .*no-tools.*\): run `npm run setup` first\n$/,
    );
  });

  it('with a usage error for a bad port (exit 2)', async () => {
    const run = await runDfn(['up', '--gateway-port', '80000']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      "option '--gateway-port <port>' argument '80000' is invalid. must be a port from 1 to 65535.",
    );
  });
});

describe('Ctrl-C while dfn up starts', () => {
  it('stops what had started and leaves no process behind', { timeout: 300_000 }, async () => {
    const up = await DfnUp.start(
      [...portArgs(await freeUpPorts())],
      { DFN_HOME: home },
      join(work, 'up.log'),
    );
    // Interrupted once the control plane is starting: etcd runs, kube-apiserver is on its way.
    await waitFor(
      () => `the control plane step:\n${up.output}`,
      () => /etcd ready/.test(up.output),
      240_000,
      100,
    );
    const pids = descendants(up.pid);
    expect(pids.length).toBeGreaterThanOrEqual(2); // nats-server and etcd, under their tethers
    expect(await up.interrupt()).toBe(0);
    expect(up.output).toContain('Interrupted: stopping what has started');
    expect(up.output).toContain('Stopped.');
    await waitFor('every process gone', () => pids.every((pid) => !alive(pid)), 30_000, 100);
    // Its temporary state directory went with it.
    const state = /file storage in (\S+)\/nats\)/.exec(up.output)?.[1];
    expect(state && existsSync(state)).toBe(false);
  });
});

describe('kill -9 of dfn up', () => {
  it('takes every process it started with it (each is tethered to it)', { timeout: 300_000 }, async () => {
    const up = await DfnUp.start(
      [...portArgs(await freeUpPorts())],
      { DFN_HOME: home },
      join(work, 'up-kill.log'),
    );
    await waitFor(
      () => `kube-apiserver to be up:\n${up.output}`,
      () => /kube-apiserver ready/.test(up.output),
      240_000,
      100,
    );
    const pids = descendants(up.pid);
    expect(pids.length).toBeGreaterThanOrEqual(3); // nats-server, etcd, kube-apiserver, under their tethers
    process.kill(up.pid, 'SIGKILL');
    await up.exited;
    await waitFor('every process gone', () => pids.every((pid) => !alive(pid)), 30_000, 100);
    // Killed, it could not remove its temporary state directory: the test does.
    const state = /file storage in (\S+)\/nats\)/.exec(up.output)?.[1];
    if (state) rmSync(state, { recursive: true, force: true });
  });
});
