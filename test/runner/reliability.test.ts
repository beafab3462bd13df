// Delivery that survives a bad day: retries that hold no consumer slot, attempt numbers that survive runner
// restarts, crashes bounded (a poison event ends as Crashed), and max_deliver as a backstop that dead-letters.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ATTEMPT_HEADER,
  CRASHES_HEADER,
  consumerName,
  type DeadLetter,
  eventSubject,
  historyHeaders,
  type InstanceRef,
  MAX_CRASHES,
  MAX_DELIVER,
  retrySubject,
} from '../../api/jetstream.js';
import type { RetryConfig } from '../../api/runner-config.js';
import { readDeadLetters } from '../../runner/dead-letters.js';
import { readDeliveryRecords } from '../../runner/delivery-records.js';
import type { Destination } from '../helpers/destination.js';
import {
  consumerState,
  type Fixture,
  outcomePath,
  prepareTopology,
  publish,
  RunnerWorld,
  runDfn,
  STARTUP_TIMEOUT_MS,
  track,
  waitFor,
} from './harness.js';

const FUNCTION = `
async function onTrack(event, settings) {
  const res = await fetch(settings.url + '/track', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messageId: event.messageId }),
  });
  if (res.status === 429 || res.status >= 500) throw new RetryError('destination answered ' + res.status);
}
`;

type Answer = { status: number } | undefined;

describe('reliability', { timeout: 180_000 }, () => {
  let w: RunnerWorld;
  let f: Fixture;
  let dest: Destination;
  /** Per messageId: how the destination answers each request, in order (missing: 200). */
  const scripts = new Map<string, Array<'hold' | number>>();
  /** Requests held open; answered when the test ends. */
  const held: Array<(a: Answer) => void> = [];

  const requestsFor = (id: string) => dest.requests.filter((r) => r.json().messageId === id);
  const deadLetter = async (ref: InstanceRef, id: string): Promise<DeadLetter | undefined> => {
    for await (const d of readDeadLetters(f.jsm, f.t, ref)) {
      if (d.deadLetter.event.messageId === id) return d.deadLetter;
    }
    return undefined;
  };
  // Each test has its own instance and source, so runners left from one never see another's events.
  const config = (instance: InstanceRef, retry: Partial<RetryConfig>, extra: Record<string, unknown> = {}) =>
    w.configDir({
      instance,
      source: instance.name,
      functionSource: FUNCTION,
      settings: { url: dest.url },
      config: { retry: { jitter: 0, ...retry }, ...extra },
    });

  beforeAll(async () => {
    w = await RunnerWorld.start();
    ({ f, dest } = w);
    dest.respond = (req) => {
      const id = req.json().messageId as string;
      const script = scripts.get(id);
      const next = script?.shift();
      if (next === 'hold') return new Promise<Answer>((resolve) => held.push(resolve));
      if (typeof next === 'number') return { status: next, body: { error: 'scripted' } };
      return undefined;
    };
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    for (const resolve of held) resolve({ status: 200 });
    await w?.dispose();
  });

  it('delivers a new event while max_ack_pending is full of events waiting for their next attempt', async () => {
    const instance = { namespace: 'default', name: 'slots' };
    await prepareTopology(f, { instance, source: instance.name, maxAckPending: 20 });
    const failing = Array.from({ length: 20 }, (_, i) => track({ i }));
    for (const e of failing) scripts.set(e.messageId!, [503, 503, 503]);
    await publish(f, failing, instance.name);
    // The next attempt is two minutes away: far beyond this test.
    w.startRunner(
      config(instance, { maxAttempts: 3, delaysMs: [120_000] }, { consumer: { maxAckPending: 20 } }),
    );
    await waitFor('every failing event attempted once', () =>
      failing.every((e) => requestsFor(e.messageId!).length === 1),
    );
    await waitFor(
      'all 20 handed on (no slot held)',
      async () => (await consumerState(f, consumerName(instance))).ackPending === 0,
    );

    const fresh = track({ fresh: true });
    await publish(f, [fresh], instance.name);
    await waitFor('the new event delivered', () => requestsFor(fresh.messageId!).length === 1);

    // Every failing event is still waiting: attempted once, its next attempt a schedule in the retry stream.
    expect(failing.map((e) => requestsFor(e.messageId!).length)).toEqual(failing.map(() => 1));
    const info = await f.jsm.streams.info(f.t.retryStream, { subjects_filter: 'dfn.sched.default.slots.>' });
    expect(Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0)).toBe(20);
  });

  it('counts attempts, not restarts: an event that succeeds on attempt 3 after a SIGKILL and a SIGTERM mid-attempt', async () => {
    const instance = { namespace: 'default', name: 'restarts' };
    await prepareTopology(f, { instance, source: instance.name });
    const event = track();
    const id = event.messageId!;
    // Held (runner killed), 503 (attempt 1), held (runner stopped), 503 (attempt 2), 200 (attempt 3).
    scripts.set(id, ['hold', 503, 'hold', 503]);
    const dir = config(
      instance,
      { maxAttempts: 3, delaysMs: [300] },
      { limits: { timeoutMs: 30_000 }, shutdown: { gracePeriodMs: 300 } },
    );
    await publish(f, [event], instance.name);

    const first = w.startRunner(dir);
    await waitFor('the first request', () => requestsFor(id).length === 1);
    first.kill('SIGKILL');
    await first.exit();

    const second = w.startRunner(dir);
    await waitFor('attempt 2 under way', () => requestsFor(id).length === 3, 60_000);
    second.kill('SIGTERM');
    expect(await second.exit()).toEqual({ code: 0, signal: null });
    expect(second.log('stopped')).toMatchObject({ released: 1 });

    w.startRunner(dir);
    await waitFor('attempt 3', () => requestsFor(id).length === 5, 60_000);
    await waitFor('the ack', async () => (await consumerState(f, consumerName(instance))).ackPending === 0);
    const records = (await readDeliveryRecords(f.jsm, f.t, instance)).filter((r) => r.messageId === id);
    // Two failed attempts recorded, as attempts 1 and 2; the SIGKILL counted as a crash, the SIGTERM as nothing.
    expect(records.map((r) => [r.attempt, r.disposition, r.crashes]).sort()).toEqual([
      [1, 'retry', 1],
      [2, 'retry', 1],
    ]);
    expect(await deadLetter(instance, id)).toBeUndefined();
  });

  it('dead-letters an event as Crashed once its redeliveries reach the crash limit, without running it again', async () => {
    const instance = { namespace: 'default', name: 'poison' };
    await prepareTopology(f, { instance, source: instance.name });
    const poison = track({ poison: true });
    const id = poison.messageId!;
    scripts.set(
      id,
      Array.from({ length: MAX_CRASHES + 1 }, () => 'hold'),
    );
    const dir = config(instance, { maxAttempts: 3, delaysMs: [300] }, { limits: { timeoutMs: 60_000 } });
    await publish(f, [poison], instance.name);
    for (let crash = 1; crash <= MAX_CRASHES; crash++) {
      const runner = w.startRunner(dir);
      await waitFor(`delivery ${crash}`, () => requestsFor(id).length === crash, 60_000);
      runner.kill('SIGKILL');
      await runner.exit();
    }
    w.startRunner(dir);
    const dead = await waitFor('the Crashed dead letter', () => deadLetter(instance, id), 60_000);
    expect(dead).toMatchObject({ lastError: { errorType: 'Crashed' }, attempts: 1, crashes: MAX_CRASHES });
    expect(requestsFor(id)).toHaveLength(MAX_CRASHES);
    await waitFor('the term', async () => (await consumerState(f, consumerName(instance))).ackPending === 0);

    const shown = await runDfn(['deliveries', 'default/poison', '--nats-url', w.nats.url]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/ {2}Crashed {2}dead-lettered\n/);
    expect(shown.stdout).toContain(`crashes ${MAX_CRASHES} (${MAX_CRASHES} allowed)`);
  });

  it('trusts Dfn- history headers only on its own retry copies: a producer cannot forge crashes or attempts', async () => {
    const instance = { namespace: 'default', name: 'forged' };
    await prepareTopology(f, { instance, source: instance.name });
    // Taken at face value, this event would be dead-lettered as Crashed at receipt without running, or
    // have used up all 3 attempts; published straight to the source's subject, it is a new event.
    const forged = track({ forged: true });
    scripts.set(forged.messageId!, [503]);
    await f.js.publish(eventSubject(f.t, instance.name, 'track'), JSON.stringify(forged), {
      headers: historyHeaders({ attempt: 9, crashes: MAX_CRASHES }),
    });
    w.startRunner(config(instance, { maxAttempts: 3, delaysMs: [300] }));
    await waitFor('the second attempt delivered', () => requestsFor(forged.messageId!).length === 2, 60_000);
    const records = await waitFor('the first attempt recorded', async () => {
      const found = await readDeliveryRecords(f.jsm, f.t, instance);
      return found.length > 0 && found;
    });
    expect(records.map((r) => [r.messageId, r.attempt, r.disposition, r.crashes])).toEqual([
      [forged.messageId, 1, 'retry', 0],
    ]);
    expect(await deadLetter(instance, forged.messageId!)).toBeUndefined();
  });

  it('dead-letters an event that reached max_deliver from the stored advisory, even if no runner was up', async () => {
    const instance = { namespace: 'default', name: 'backstop' };
    await prepareTopology(f, { instance, source: instance.name });
    const event = track();
    await publish(f, [event], instance.name);
    // A consumer that never answers but nak: stands in for runners dying before they could act.
    const consumer = await f.js.consumers.get(f.t.eventsStream, consumerName(instance));
    for (let i = 0; i < MAX_DELIVER; i++) {
      const m = await consumer.next({ expires: 5000 });
      expect(m?.info.deliveryCount).toBe(i + 1);
      m!.nak();
    }
    // JetStream notices the limit when it would deliver the message again, i.e. on the next pull.
    expect(await consumer.next({ expires: 1000 })).toBeNull();
    await waitFor(
      'the advisory stored',
      async () => (await f.jsm.streams.info(f.t.advisoryStream)).state.messages === 1,
    );

    w.startRunner(config(instance, { maxAttempts: 3 }));
    const dead = await waitFor('the dead letter', () => deadLetter(instance, event.messageId!), 60_000);
    expect(dead.lastError).toEqual({
      errorType: 'Crashed',
      message: `delivered ${MAX_DELIVER} times without an outcome (the consumer's max_deliver)`,
    });
    expect(dead.event).toEqual(event);
    expect(requestsFor(event.messageId!)).toHaveLength(0);
    await waitFor(
      'the advisory handled',
      async () => (await f.jsm.streams.info(f.t.advisoryStream)).state.messages === 0,
    );
  });

  it('crashed(): re-enqueues with Dfn-Crashes + 1 and the same Dfn-Attempt, then dead-letters at the limit', async () => {
    const instance = { namespace: 'default', name: 'contract' };
    await prepareTopology(f, { instance, source: instance.name });
    const event = track();
    // A copy already at attempt 4: crashes must not use up or reset its attempts.
    await f.js.publish(retrySubject(f.t, instance), JSON.stringify(event), {
      headers: historyHeaders({ attempt: 4, crashes: 0 }),
    });
    const { stats, inFlight, outcomes } = outcomePath(f, instance, {
      maxAttempts: 10,
      initialDelayMs: 1000,
      multiplier: 2,
      maxDelayMs: 1000,
      jitter: 0,
    });
    const consumer = await f.js.consumers.get(f.t.eventsStream, consumerName(instance));
    const seen: Array<[string | undefined, string | undefined]> = [];
    for (let crash = 1; crash <= MAX_CRASHES; crash++) {
      const m = await consumer.next({ expires: 10_000 });
      expect(m).not.toBeNull();
      seen.push([m!.headers?.get(ATTEMPT_HEADER), m!.headers?.get(CRASHES_HEADER)]);
      const h = inFlight.add(m!, event);
      await outcomes.crashed(h, `isolate died (${crash})`);
      expect(inFlight.size).toBe(0);
    }
    expect(seen).toEqual([
      ['4', '0'],
      ['4', '1'],
      ['4', '2'],
    ]);
    const dead = await deadLetter(instance, event.messageId!);
    expect(dead).toMatchObject({
      attempts: 4,
      crashes: MAX_CRASHES,
      lastError: {
        errorType: 'Crashed',
        message: `crashed ${MAX_CRASHES} times (${MAX_CRASHES} allowed), last: isolate died (3)`,
      },
    });
    expect(stats.counters).toMatchObject({ retried: MAX_CRASHES - 1, deadLettered: 1 });
    expect(await consumerState(f, consumerName(instance))).toMatchObject({ pending: 0, ackPending: 0 });
  });
});
