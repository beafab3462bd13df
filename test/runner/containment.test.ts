// Containment through the runner process: hostile functions that abort, wedge or outgrow their sandbox
// process. The runner survives with its RSS bounded, the guilty event alone is charged, the rest deliver.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceRef } from '../../api/jetstream.js';
import { consumerName, type DeadLetter, MAX_CRASHES } from '../../api/jetstream.js';
import { readDeadLetters } from '../../runner/dead-letters.js';
import { readDeliveryRecords } from '../../runner/delivery-records.js';
import type { Destination } from '../helpers/destination.js';
import {
  consumerState,
  type Fixture,
  prepareTopology,
  publish,
  type RunnerProcess,
  RunnerWorld,
  runDfn,
  STARTUP_TIMEOUT_MS,
  track,
  waitFor,
} from './harness.js';

/** Every hostile function also delivers benign events: one POST per event with its messageId. */
const DELIVER = `
async function deliver(event, settings) {
  const res = await fetch(settings.url + '/track', { method: 'POST', body: JSON.stringify({ messageId: event.messageId }) });
  if (res.status >= 500) throw new RetryError('destination answered ' + res.status);
}`;

const TIMEOUT_MS = 1000;
/** The runner process itself (NATS client, acks, a supervisor) stays small whatever its sandbox holds. */
const RUNNER_RSS_LIMIT_MB = 400;

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
}

/** The runner's sandbox processes: its child processes. */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (children) out.push(...children.split(/\s+/).map(Number));
  }
  return out;
}

describe('containment', { timeout: 180_000 }, () => {
  let w: RunnerWorld;
  let f: Fixture;
  let dest: Destination;
  let seq = 0;

  const requestsFor = (id: string) =>
    dest.requests.filter((r) => r.url === '/track' && r.json().messageId === id);
  const deadLetter = async (ref: InstanceRef, id: string): Promise<DeadLetter | undefined> => {
    for await (const d of readDeadLetters(f.jsm, f.t, ref)) {
      if (d.deadLetter.event.messageId === id) return d.deadLetter;
    }
    return undefined;
  };
  const settled = async (ref: InstanceRef) => {
    const s = await consumerState(f, consumerName(ref));
    return s.pending === 0 && s.ackPending === 0;
  };

  /** Its own instance and source per test, so no runner sees another test's events. */
  async function runnerFor(
    functionSource: string,
    config: Record<string, unknown> = {},
  ): Promise<{ instance: InstanceRef; runner: RunnerProcess }> {
    const instance = { namespace: 'default', name: `hostile-${++seq}` };
    await prepareTopology(f, { instance, source: instance.name });
    const dir = w.configDir({
      instance,
      source: instance.name,
      functionSource,
      settings: { url: dest.url },
      config: { limits: { timeoutMs: TIMEOUT_MS }, retry: { maxAttempts: 2, delaysMs: [100] }, ...config },
    });
    const runner = w.startRunner(dir);
    await runner.consuming();
    return { instance, runner };
  }

  /** The runner is alive, small, and delivers a benign event sent now. */
  async function expectHealthy(instance: InstanceRef, runner: RunnerProcess): Promise<void> {
    const benign = track();
    await publish(f, [benign], instance.name);
    await waitFor('the benign event delivered', () => requestsFor(benign.messageId!).length === 1, 60_000);
    expect(runner.exitCode).toBeUndefined();
    expect(rssMb(runner.child.pid!)).toBeLessThan(RUNNER_RSS_LIMIT_MB);
  }

  beforeAll(async () => {
    w = await RunnerWorld.start();
    ({ f, dest } = w);
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await w?.dispose();
  });

  it('an event that aborts its sandbox process is dead-lettered as Crashed; the runner stays up', async () => {
    // isolated-vm ends the process with abort() (SIGABRT) where its C++ has no error path. The sandbox's
    // bounds close the ones known (test/sandbox/containment-runner.test.ts: a spent ArrayBuffer budget,
    // then fetch, no longer aborts), so here the destination aborts the sandbox process whenever the
    // poison's request arrives: the supervisor must contain an abort whatever its cause.
    const { instance, runner } = await runnerFor(`${DELIVER}
      async function onTrack(event, settings) { await deliver(event, settings); }`);
    const poison = track({ poison: true });
    const aborted = new Set<number>();
    dest.respond = (req) => {
      if (req.url !== '/track' || req.json().messageId !== poison.messageId) return undefined;
      for (const pid of childPids(runner.child.pid!)) {
        aborted.add(pid);
        process.kill(pid, 'SIGABRT');
      }
      return { status: 503 };
    };
    try {
      await publish(f, [poison], instance.name);
      const dead = await waitFor(
        'the poison dead-lettered',
        () => deadLetter(instance, poison.messageId!),
        120_000,
      );
      expect(dead).toMatchObject({ lastError: { errorType: 'Crashed' }, attempts: 1, crashes: MAX_CRASHES });
      expect(runner.log('the sandbox process ended; the next events start a new one')).toMatchObject({
        reason: 'was killed by SIGABRT',
      });
      expect(aborted.size).toBeGreaterThanOrEqual(MAX_CRASHES);
      const shown = await runDfn([
        'deliveries',
        `${instance.namespace}/${instance.name}`,
        '--nats-url',
        w.nats.url,
      ]);
      expect(shown.stdout).toMatch(/ {2}Crashed {2}dead-lettered\n/);
    } finally {
      dest.respond = () => undefined;
    }
    await expectHealthy(instance, runner);
  });

  it('a poison event among 99 good ones in a micro-batch: the 99 are delivered exactly once', async () => {
    const { instance, runner } = await runnerFor(
      `${DELIVER}
      let settled = 0;
      async function onTrack(event, settings) {
        if (!event.properties.poison) {
          await deliver(event, settings);
          settled++;
          return;
        }
        // Spins once the 99 others have finished (top-level state is shared by the invocations): the
        // isolate must be killed, and only this event is to blame.
        while (settled < 99) await new Promise((r) => setTimeout(r, 20));
        for (;;) {}
      }`,
      { retry: { maxAttempts: 1 }, limits: { timeoutMs: 3000 } },
    );
    const good = Array.from({ length: 99 }, () => track());
    const poison = track({ poison: true });
    const events = [...good.slice(0, 50), poison, ...good.slice(50)];
    await publish(f, events, instance.name);
    const dead = await waitFor(
      'the poison dead-lettered',
      () => deadLetter(instance, poison.messageId!),
      60_000,
    );
    expect(dead.lastError.errorType).toBe('Timeout');
    await waitFor('every event settled', () => settled(instance), 60_000);
    for (const e of good) expect(requestsFor(e.messageId!), e.messageId).toHaveLength(1);
    const records = await readDeliveryRecords(f.jsm, f.t, instance);
    expect(records.map((r) => r.messageId)).toEqual([poison.messageId]);
    await expectHealthy(instance, runner);
  });

  it('a poison event that kills its sandbox process in a micro-batch: the others are delivered, it alone is Crashed', async () => {
    // The destination kills the runner's sandbox process whenever the poison's request arrives: a process
    // death caused by one event, whatever isolated-vm's own bugs are by then.
    const { instance, runner } = await runnerFor(`${DELIVER}
      async function onTrack(event, settings) { await deliver(event, settings); }`);
    const good = Array.from({ length: 99 }, () => track());
    const poison = track();
    const kills: number[] = [];
    dest.respond = (req) => {
      if (req.url !== '/track' || req.json().messageId !== poison.messageId) return undefined;
      const [pid] = childPids(runner.child.pid!);
      if (pid !== undefined) {
        kills.push(pid);
        process.kill(pid, 'SIGKILL');
      }
      return { status: 503 };
    };
    try {
      await publish(f, [...good.slice(0, 50), poison, ...good.slice(50)], instance.name);
      const dead = await waitFor(
        'the poison dead-lettered',
        () => deadLetter(instance, poison.messageId!),
        120_000,
      );
      expect(dead).toMatchObject({ lastError: { errorType: 'Crashed' }, attempts: 1, crashes: MAX_CRASHES });
      await waitFor('every event settled', () => settled(instance), 60_000);
      // A dead process takes its call's results with it: events that had finished are rerun (at least once).
      for (const e of good) expect(requestsFor(e.messageId!).length, e.messageId).toBeGreaterThanOrEqual(1);
      for await (const d of readDeadLetters(f.jsm, f.t, instance)) {
        expect(d.deadLetter.event.messageId).toBe(poison.messageId);
      }
      const records = await readDeliveryRecords(f.jsm, f.t, instance);
      expect(new Set(records.map((r) => r.messageId))).toEqual(new Set([poison.messageId]));
      expect(new Set(records.map((r) => r.errorType))).toEqual(new Set(['Crashed']));
      const shown = await runDfn([
        'deliveries',
        `${instance.namespace}/${instance.name}`,
        '--nats-url',
        w.nats.url,
      ]);
      expect(shown.stdout).toMatch(/ {2}Crashed {2}dead-lettered\n/);
      expect(new Set(kills).size).toBeGreaterThanOrEqual(MAX_CRASHES);
    } finally {
      dest.respond = () => undefined;
    }
    await expectHealthy(instance, runner);
  });

  it('a top-level timer that spins after an invocation returned is killed by the watchdog, not by the next event', async () => {
    // An invocation's own timers end with it; top-level code's live on, so one of those does the spinning.
    const { instance, runner } = await runnerFor(`${DELIVER}
      let spin = false;
      (function tick() { setTimeout(() => { if (spin) { spin = false; for (;;) {} } tick(); }, 20); })();
      async function onTrack(event, settings) {
        await deliver(event, settings);
        if (event.properties.spin) spin = true;
      }`);
    const spinner = track({ spin: true });
    await publish(f, [spinner], instance.name);
    await waitFor('the spinner delivered', () => requestsFor(spinner.messageId!).length === 1);
    const port = await runner.httpPort();
    await waitFor(
      'the watchdog to kill the spinning isolate (a rebuild once the next event runs)',
      async () => {
        const probe = track();
        await publish(f, [probe], instance.name);
        await waitFor('the probe delivered', () => requestsFor(probe.messageId!).length >= 1, 90_000);
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return Number(/^dfn_runner_sandbox_rebuilds_total\S* (\d+)/m.exec(metrics)?.[1] ?? 0) >= 1;
      },
      // Longer than one probe's wait: a probe queued behind the spin may be the one that sees the kill, and
      // on a loaded machine a replaced sandbox process takes tens of seconds to start through tsx.
      150_000,
    );
    await waitFor('every event settled', () => settled(instance));
    // Killed between invocations: no event was charged with the spin.
    expect(await readDeliveryRecords(f.jsm, f.t, instance)).toEqual([]);
    await expectHealthy(instance, runner);
  }, 300_000);

  it('SIGKILL of the sandbox process mid-flight: it is replaced and the events it held are delivered', async () => {
    let hold = true;
    const held: Array<() => void> = [];
    dest.respond = (req) =>
      hold && req.url === '/track'
        ? new Promise((resolve) => held.push(() => resolve(undefined)))
        : undefined;
    try {
      const { instance, runner } = await runnerFor(`${DELIVER}
        async function onTrack(event, settings) { await deliver(event, settings); }`);
      const events = Array.from({ length: 10 }, () => track());
      await publish(f, events, instance.name);
      await waitFor('the requests held', () => held.length === 10);
      const [sandboxPid] = childPids(runner.child.pid!);
      expect(sandboxPid).toBeDefined();
      hold = false;
      process.kill(sandboxPid!, 'SIGKILL');
      await waitFor(
        'every event delivered',
        () => events.every((e) => requestsFor(e.messageId!).length >= 2),
        60_000,
      );
      await waitFor('every event settled', () => settled(instance), 60_000);
      expect(runner.log('the sandbox process ended; the next events start a new one')).toMatchObject({
        reason: 'was killed by SIGKILL',
      });
      const records = await readDeliveryRecords(f.jsm, f.t, instance);
      expect(records).toEqual([]);
      expect(childPids(runner.child.pid!)).not.toContain(sandboxPid);
      await expectHealthy(instance, runner);
    } finally {
      hold = false;
      for (const release of held.splice(0)) release();
      dest.respond = () => undefined;
    }
  });

  describe('a function whose loading never ends', () => {
    const HANGS = {
      'a getter on globalThis.onTrack that loops': `Object.defineProperty(globalThis, 'onTrack', { get() { for (;;) {} } });`,
      'a top-level timer that spins': `setTimeout(() => { for (;;) {} }, 0); async function onTrack() {}`,
      'a top-level loop': `for (;;) {}`,
    };

    it('a looping Array.prototype.toJSON is never called: load logs are written from primitives', async () => {
      const dir = w.configDir({
        functionSource: `console.log('loading');
          Array.prototype.toJSON = function () { for (;;) {} };
          async function onTrack() { console.log('tracked', JSON.stringify({ n: 1 })); }`,
        config: { limits: { timeoutMs: TIMEOUT_MS } },
      });
      writeFileSync(join(dir, 'event.json'), JSON.stringify(track()));
      const tested = await runDfn([
        'test',
        join(dir, 'function.js'),
        '--event',
        join(dir, 'event.json'),
        '--timeout',
        String(TIMEOUT_MS),
      ]);
      expect(tested.code, tested.stderr).toBe(0);
      expect(tested.stdout).toMatch(/Outcome: success/);
      expect(tested.stdout).toMatch(/loading\n\s+tracked \{"n":1\}/);
    });

    for (const [what, source] of Object.entries(HANGS)) {
      it(`${what}: dfn test and dfn runner fail with a clear error`, async () => {
        const dir = w.configDir({ functionSource: source, config: { limits: { timeoutMs: TIMEOUT_MS } } });
        writeFileSync(join(dir, 'event.json'), JSON.stringify(track()));
        const tested = await runDfn([
          'test',
          join(dir, 'function.js'),
          '--event',
          join(dir, 'event.json'),
          '--timeout',
          String(TIMEOUT_MS),
        ]);
        expect(tested.code, tested.stderr).toBe(2);
        expect(tested.stderr).toMatch(/loading the function did not finish within 1000 ms/);
        const started = await runDfn(['runner', '--config', dir]);
        expect(started.code, started.stderr).toBe(2);
        expect(started.stderr).toMatch(/loading the function did not finish within 1000 ms/);
      });
    }
  });
});
