// The supervised sandbox: the same contract as the in-process sandbox, across a sandbox process that may
// die. A dead process is replaced; events in doubt are rerun alone and only the one that kills it is Crashed.

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  FunctionLoadError,
  type FunctionSandbox,
  loadSupervisedFunction,
  type SandboxOptions,
} from '../../sandbox/index.js';
import { alive } from '../helpers/processes.js';

/** A process's children (by default this one's: the sandbox processes of the sandboxes this file loaded). */
function childPids(pid: number | 'self' = 'self'): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
    readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number),
  );
}

describe('supervised sandbox', { timeout: 120_000 }, () => {
  const loaded: FunctionSandbox[] = [];
  let server: Server;
  let url: string;
  /** Called for each request the server receives, with its path; 'keep' leaves it unanswered. */
  let onRequest: (path: string) => unknown = () => {};
  let held = 0;
  let heldClosed = 0;

  const load = async (source: string, options: SandboxOptions = {}) => {
    const sb = await loadSupervisedFunction(source, {
      allowPrivateNetwork: true,
      settings: { url },
      limits: { timeoutMs: 1000 },
      ...options,
    });
    loaded.push(sb);
    return sb;
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (onRequest(req.url ?? '/') === 'keep') return;
      if (req.url === '/hold') {
        // Held until its client goes away: counted when the connection closes with no answer sent.
        held++;
        res.on('close', () => {
          if (!res.writableEnded) heldClosed++;
        });
        return;
      }
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterEach(() => {
    onRequest = () => {};
    for (const sb of loaded.splice(0)) sb.dispose();
  });

  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('reports handlers, load logs, outcomes and logs as the in-process sandbox does', async () => {
    const sb = await load(`
      console.log('loading');
      async function onTrack(event) { console.log('track', event.userId); }
      async function onIdentify() { throw new ValidationError('no traits'); }`);
    expect([...sb.handlers].sort()).toEqual(['onIdentify', 'onTrack']);
    expect(sb.loadLogs).toEqual(['loading']);
    const reports = await sb.invoke([{ type: 'track', userId: 'u1' }, { type: 'identify' }]);
    expect(reports.map((r) => r.outcome)).toEqual([
      { outcome: 'success' },
      { outcome: 'discard', errorType: 'MessageRejected', message: 'no traits' },
    ]);
    expect(reports[0]!.logs).toEqual(['track u1']);
  });

  it('carries a load error, with its position, out of the sandbox process', async () => {
    const err = await load('function onTrack( {').catch((e) => e);
    expect(err).toBeInstanceOf(FunctionLoadError);
    expect(err.reason).toMatch(/SyntaxError/);
    expect(err.line).toBe(1);
  });

  it('replaces a sandbox process killed between calls, with a fresh isolate', async () => {
    const sb = await load('let calls = 0; async function onTrack() { console.log(String(++calls)); }');
    expect((await sb.invoke([{ type: 'track' }]))[0]!.logs).toEqual(['1']);
    const [pid] = childPids();
    process.kill(pid!, 'SIGKILL');
    await expect.poll(() => childPids().includes(pid!), { timeout: 30_000 }).toBe(false);
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report).toMatchObject({ outcome: { outcome: 'success' }, logs: ['1'] });
    expect(sb.rebuilds).toBe(1);
  });

  it('an event that kills its process is Crashed alone; the others of its call are rerun and succeed', async () => {
    const sb = await load(`async function onTrack(event, settings) {
      await fetch(settings.url + '/' + event.userId);
    }`);
    const requests: string[] = [];
    onRequest = (path) => {
      requests.push(path);
      // The request of the poison event kills whatever sandbox process made it.
      if (path === '/poison') for (const pid of childPids()) process.kill(pid, 'SIGKILL');
    };
    const users = ['a', 'b', 'poison', 'c'];
    const reports = await sb.invoke(users.map((userId) => ({ type: 'track', userId })));
    expect(reports.map((r) => r.outcome.outcome)).toEqual(['success', 'success', 'retry', 'success']);
    expect(reports[2]!.outcome).toMatchObject({
      errorType: 'Crashed',
      message: expect.stringContaining('was killed by SIGKILL while the event ran alone in it'),
    });
    // Each good event ran at least once more, alone, after the first process died.
    for (const u of ['a', 'b', 'c'])
      expect(requests.filter((p) => p === `/${u}`).length).toBeGreaterThanOrEqual(1);
    expect(requests.filter((p) => p === '/poison')).toHaveLength(2);
    const [after] = await sb.invoke([{ type: 'track', userId: 'after' }]);
    expect(after!.outcome).toEqual({ outcome: 'success' });
  });

  it('an event whose isolate is killed for time is a Timeout; what had finished keeps its result', async () => {
    const sb = await load(`async function onTrack(event, settings) {
      await fetch(settings.url + '/' + event.userId);
      if (event.userId === 'spin') { await new Promise((r) => setTimeout(r, 200)); for (;;) {} }
    }`);
    const requests: string[] = [];
    onRequest = (path) => requests.push(path);
    const users = ['a', 'spin', 'b', 'c'];
    const reports = await sb.invoke(users.map((userId) => ({ type: 'track', userId })));
    expect(reports.map((r) => r.outcome.outcome)).toEqual(['success', 'retry', 'success', 'success']);
    expect(reports[1]!.outcome).toMatchObject({ errorType: 'Timeout' });
    expect(reports.every((r) => r.interrupted === undefined)).toBe(true);
    // Nothing that had finished ran again.
    expect(requests.sort()).toEqual(['/a', '/b', '/c', '/spin']);
  });

  it('requests in flight end with the sandbox process killed under them, and with the isolate killed in the rerun', async () => {
    const sb = await load(`async function onTrack(event, settings) {
      await fetch(settings.url + '/' + event.userId);
    }`);
    held = 0;
    heldClosed = 0;
    onRequest = (path) => {
      if (path !== '/poison') return;
      // Once the held request is out, the poison's request kills whatever sandbox process made it.
      const kill = (): void => {
        if (held === 0) return void setTimeout(kill, 10);
        for (const pid of childPids()) process.kill(pid, 'SIGKILL');
      };
      kill();
      return 'keep';
    };
    const reports = await sb.invoke(['hold', 'poison'].map((userId) => ({ type: 'track', userId })));
    // /hold never answers: alone in a fresh process it is a Timeout, its isolate killed at the deadline.
    expect(reports[0]!.outcome).toMatchObject({ outcome: 'retry', errorType: 'Timeout' });
    expect(reports[1]!.outcome).toMatchObject({ outcome: 'retry', errorType: 'Crashed' });
    // Every held request was closed by its client, none left open by a process or an isolate gone.
    await expect.poll(() => heldClosed, { timeout: 30_000 }).toBe(held);
    expect(held).toBeGreaterThanOrEqual(2);
  });

  it('events rerun alone after a crash cross as their own texts, as in the call that crashed', async () => {
    // Every report comes from a rerun (the crash lost the call's), and each says which text its event was
    // parsed from: the objects differ from their texts (userId, and 1e400, which parses as Infinity).
    const sb = await load(`async function onTrack(event, settings) {
      if (event.userId === 'poison') await fetch(settings.url + '/poison');
      throw new ValidationError(event.userId + ' ' + String(event.mark));
    }`);
    onRequest = (path) => {
      if (path === '/poison') for (const pid of childPids()) process.kill(pid, 'SIGKILL');
    };
    const users = ['a', 'b', 'poison', 'c'];
    const events = users.map((u) => ({ type: 'track', userId: `object-${u}`, mark: 'object' }));
    const texts = users.map((u) => `{"type":"track","userId":"${u}","mark":1e400}`);
    const crashed = expect.stringContaining('was killed by SIGKILL while the event ran alone in it');
    const reports = await sb.invoke(events, texts);
    expect(reports.map((r) => (r.outcome as { message: string }).message)).toEqual([
      'a Infinity',
      'b Infinity',
      crashed,
      'c Infinity',
    ]);

    const batch = await load(`async function onBatch(events, settings) {
      if (events.some((e) => e.userId === 'poison')) await fetch(settings.url + '/poison');
      return events.map((e) => ({ status: 400, errormessage: e.userId + ' ' + String(e.mark) }));
    }`);
    const report = await batch.invokeBatch(events, texts);
    expect(report.results.map((r) => (r as { message: string }).message)).toEqual([
      'a Infinity',
      'b Infinity',
      crashed,
      'c Infinity',
    ]);
  });

  it('the memory limit holds in the sandbox process: twice the limit kept alive is stopped, three quarters is not', async () => {
    // Kept, not garbage: 64 KiB arrays of small integers held until the invocation ends. The process's
    // own V8 flags must not widen what its isolates may keep (isolated-vm allows a few MiB of slack).
    const keeper = (memoryMb: number) =>
      load(
        `async function onTrack(event) {
          const kept = [];
          for (let i = 0; i < event.properties.mib * 16; i++) kept.push(new Array(8192).fill(i & 1023));
          return kept.length;
        }`,
        { limits: { timeoutMs: 10_000, memoryMb } },
      );
    for (const memoryMb of [16, 128]) {
      const sb = await keeper(memoryMb);
      const [over] = await sb.invoke([{ type: 'track', properties: { mib: 2 * memoryMb } }]);
      expect(over!.outcome).toMatchObject({
        outcome: 'retry',
        errorType: 'Timeout',
        message: expect.stringContaining(`ran out of memory (limit ${memoryMb} MiB)`),
      });
      const [under] = await sb.invoke([{ type: 'track', properties: { mib: 0.75 * memoryMb } }]);
      expect(under!.outcome).toEqual({ outcome: 'success' });
    }
  });

  it('a batch whose process dies is rerun one event per onBatch call', async () => {
    const sb = await load(`async function onBatch(events, settings) {
      for (const e of events) await fetch(settings.url + '/' + e.userId);
      return events.map(() => ({ status: 200 }));
    }`);
    onRequest = (path) => {
      if (path === '/poison') for (const pid of childPids()) process.kill(pid, 'SIGKILL');
    };
    const report = await sb.invokeBatch(['a', 'poison', 'b'].map((userId) => ({ type: 'track', userId })));
    expect(report.results.map((r) => r.outcome)).toEqual(['success', 'retry', 'success']);
    expect(report.results[1]).toMatchObject({ errorType: 'Crashed' });
    expect(report.outcome).toMatchObject({ errorType: 'Crashed' });
  });

  it('a sandbox process whose supervisor is killed (SIGKILL, nothing cleans up) exits with it', async () => {
    // A supervisor in a process of its own, holding a loaded sandbox and a call in flight; the function's
    // hour-long top-level timer would keep its sandbox process alive on its own.
    const entry = new URL('../../sandbox/index.ts', import.meta.url).href;
    const source =
      'setTimeout(() => {}, 3_600_000); async function onTrack() { await new Promise(() => {}); }';
    const script = `
      const { loadSupervisedFunction } = await import(${JSON.stringify(entry)});
      const sb = await loadSupervisedFunction(${JSON.stringify(source)});
      void sb.invoke([{ type: 'track' }]);
      console.log('loaded');
      setInterval(() => {}, 1000);`;
    const supervisor = spawn(
      process.execPath,
      ['--no-node-snapshot', '--import', 'tsx', '--input-type=module', '-e', script],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        supervisor.stdout.on('data', (d: Buffer) => d.toString().includes('loaded') && resolve());
        supervisor.once('exit', (code) => reject(new Error(`the supervisor exited (${code})`)));
      });
      const [sandboxPid] = childPids(supervisor.pid!);
      expect(sandboxPid).toBeGreaterThan(0);
      supervisor.kill('SIGKILL');
      // Its pipe closed: the sandbox process exits (and, orphaned, is reaped by init).
      await expect.poll(() => alive(sandboxPid!), { timeout: 30_000 }).toBe(false);
    } finally {
      supervisor.kill('SIGKILL');
    }
  });
});
