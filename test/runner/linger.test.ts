// The invoker's micro-batch linger: while a sandbox call is in flight, new events wait for company; an idle
// sandbox gets an event at once; a full micro-batch goes at once. Asserted through event-loop order and
// call counts, never durations: the linger's 2 ms is never waited for by the test.
//
// The Invoker is driven directly (real JetStream messages, a real sandbox process, the real InFlight,
// Stats and OutcomeHandler) because the linger is about *which event-loop turn* each event arrives in,
// and through a consumer the pulls decide that. The one stand-in is a pass-through around the real
// sandbox that records each invoke()'s events: the sandbox-call metric counts calls and their sizes, not
// which events travelled together.

import type { JsMsg } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SegmentEvent } from '../../api/events.js';
import { consumerName, runnerCounters } from '../../api/jetstream.js';
import { BATCHING_DEFAULTS } from '../../api/runner-config.js';
import type { HeldEvent } from '../../runner/in-flight.js';
import { Invoker, MICRO_BATCH_SIZE } from '../../runner/invoker.js';
import {
  type BatchReport,
  type EventTexts,
  type FunctionSandbox,
  type InvocationReport,
  loadSupervisedFunction,
} from '../../sandbox/index.js';
import { Destination } from '../helpers/destination.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  consumerState,
  type Fixture,
  fixture,
  outcomePath,
  prepareTopology,
  publish,
  STARTUP_TIMEOUT_MS,
  track,
  waitFor,
} from './harness.js';

/** Each event's handler calls the destination, which holds its answer: the call stays in flight until released. */
const FUNCTION = `
async function onTrack(event, settings) {
  const res = await fetch(settings.url + '/' + event.messageId, { method: 'POST' });
  if (!res.ok) throw new RetryError('status ' + res.status);
}
`;

/** The real sandbox, with each invoke()'s events (their messageIds) recorded in call order. */
class RecordingSandbox implements FunctionSandbox {
  readonly calls: string[][] = [];
  constructor(private readonly inner: FunctionSandbox) {}
  get handlers() {
    return this.inner.handlers;
  }
  get loadLogs() {
    return this.inner.loadLogs;
  }
  get rebuilds() {
    return this.inner.rebuilds;
  }
  invoke(events: readonly SegmentEvent[], texts?: EventTexts): Promise<InvocationReport[]> {
    this.calls.push(events.map((e) => e.messageId!));
    return this.inner.invoke(events, texts);
  }
  invokeBatch(events: readonly SegmentEvent[], texts?: EventTexts): Promise<BatchReport> {
    return this.inner.invokeBatch(events, texts);
  }
  /** The sandbox is shared by the tests; the file disposes of it once. */
  dispose(): void {}
}

/**
 * Resolves in the check phase of the current event-loop turn, after every immediate queued before it. A
 * timer set during this turn cannot have fired by then (timers run at the start of the next turn), so it
 * tells "drained at once" from "waiting for its linger" without depending on how long anything takes.
 */
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

let nats: NatsServer;
let f: Fixture;
let dest: Destination;
let sandbox: FunctionSandbox;
let releaseDestination: () => void = () => {};

beforeAll(async () => {
  nats = await NatsServer.start();
  f = await fixture(await nats.connect());
  dest = await Destination.start();
  sandbox = await loadSupervisedFunction(FUNCTION, {
    settings: { url: dest.url },
    allowPrivateNetwork: true,
    limits: { timeoutMs: 60_000, fetchTimeoutMs: 60_000 },
  });
}, STARTUP_TIMEOUT_MS);

afterAll(async () => {
  releaseDestination();
  sandbox?.dispose();
  await f?.nc.close();
  await dest?.close();
  await nats?.dispose();
});

// A test that fails midway leaves its calls held: released here, and its events are on its own consumer.
afterEach(() => releaseDestination());

let worlds = 0;
/**
 * A fresh invoker over the real pieces, on an instance (source and consumer) of its own, with the
 * destination holding every answer until settledOnce() releases them.
 */
async function world() {
  const instance = { namespace: 'default', name: `linger-${++worlds}` };
  // Messages are held across a test's steps: a long ack wait keeps them from being redelivered meanwhile.
  await prepareTopology(f, { instance, source: instance.name, ackWaitMs: 120_000 });
  const consumer = await f.js.consumers.get(f.t.eventsStream, consumerName(instance));
  const { stats, inFlight, outcomes } = outcomePath(
    f,
    instance,
    { maxAttempts: 3, initialDelayMs: 100, multiplier: 2, maxDelayMs: 100, jitter: 0 },
    1000,
  );
  const recording = new RecordingSandbox(sandbox);
  const invoker = new Invoker(recording, outcomes, stats, { ...BATCHING_DEFAULTS, enabled: false });
  expect(invoker.batching).toBe(false);
  const gate = new Promise<void>((resolve) => {
    releaseDestination = resolve;
  });
  dest.respond = async () => {
    await gate;
    return undefined;
  };
  const held: HeldEvent[] = [];

  /** `n` events through JetStream, received and held as the runner holds them (not yet submitted). */
  const receive = async (n: number): Promise<HeldEvent[]> => {
    const events = Array.from({ length: n }, () => track());
    await publish(f, events, instance.name);
    const msgs: JsMsg[] = [];
    while (msgs.length < n) {
      const batch = await consumer.fetch({ max_messages: n - msgs.length, expires: 5000 });
      for await (const m of batch) msgs.push(m);
    }
    const out = msgs.map((m) => inFlight.add(m, JSON.parse(m.string()) as SegmentEvent));
    // The consumer delivers in stream order: the events come out as published.
    expect(out.map((h) => h.event.messageId)).toEqual(events.map((e) => e.messageId));
    held.push(...out);
    return out;
  };

  /** One event in a sandbox call of its own, held in flight (its request unanswered) until settledOnce(). */
  const callInFlight = async (): Promise<HeldEvent> => {
    const [first] = await receive(1);
    invoker.submit(first!);
    await waitFor('the first call', () => recording.calls.length === 1);
    await waitFor('its request at the destination', () => requestsFor(first!.event.messageId!) === 1);
    expect(inFlight.size).toBe(1);
    return first!;
  };

  /** Every held event was in exactly one call, called the destination once, succeeded and was acked. */
  const settledOnce = async (): Promise<void> => {
    releaseDestination();
    await waitFor(
      () => `every event settled (${inFlight.size} held)`,
      () => inFlight.size === 0,
    );
    const ids = held.map((h) => h.event.messageId!);
    const invoked = recording.calls.flat();
    expect(invoked.toSorted()).toEqual(ids.toSorted());
    expect(recording.calls.every((c) => c.length > 0 && c.length <= MICRO_BATCH_SIZE)).toBe(true);
    expect(ids.map(requestsFor)).toEqual(ids.map(() => 1));
    expect(held.every((h) => h.settled)).toBe(true);
    // Every one delivered, nothing retried, discarded or dead-lettered (received counts in Runner.receive).
    expect(stats.counters).toEqual(
      runnerCounters({
        delivered: ids.length,
        invocations: ids.length,
        executionMs: stats.counters.executionMs,
      }),
    );
    await waitFor('the acks at the server', async () => {
      const state = await consumerState(f, consumerName(instance));
      return state.ackPending === 0 && state.pending === 0;
    });
  };

  return { invoker, recording, receive, callInFlight, settledOnce };
}

function requestsFor(messageId: string): number {
  return dest.requests.filter((r) => r.url === `/${messageId}`).length;
}

describe('micro-batch linger', () => {
  it('an event at an idle invoker goes into a call of its own in the next turn, without a linger', async () => {
    const w = await world();
    const [event] = await w.receive(1);
    w.invoker.submit(event!);
    expect(w.recording.calls).toEqual([]);
    // Nothing in flight: the drain is an immediate, queued before this one, so it has run by now.
    await nextTurn();
    expect(w.recording.calls).toEqual([[event!.event.messageId]]);
    await w.settledOnce();
  });

  it('while a call is in flight, a new event is still waiting after the next turn, then goes (alone if none came)', async () => {
    const w = await world();
    const first = await w.callInFlight();
    const [second] = await w.receive(1);
    w.invoker.submit(second!);
    // At an idle invoker it would have been invoked by now (the test above); here it waits for company.
    await nextTurn();
    expect(w.recording.calls).toEqual([[first.event.messageId]]);
    // No company came: it still goes, in a call of its own, while the first call is still held.
    await waitFor('the lingering event invoked', () => w.recording.calls.length === 2);
    expect(w.recording.calls[1]).toEqual([second!.event.messageId]);
    await w.settledOnce();
    expect(w.recording.calls).toHaveLength(2);
  });

  it('events arriving one per turn while a call is in flight share sandbox calls', async () => {
    const w = await world();
    await w.callInFlight();
    const trickle = await w.receive(64);
    // One event per event-loop turn: without the linger each would be drained alone (the turn's immediate
    // runs before the next submit), 64 calls for 64 events.
    for (const held of trickle) {
      w.invoker.submit(held);
      await nextTurn();
    }
    await waitFor('every trickled event invoked', () => w.recording.calls.flat().length === 65);
    const later = w.recording.calls.slice(1);
    expect(later.length).toBeLessThan(trickle.length);
    expect(later.some((c) => c.length > 1)).toBe(true);
    // Order within and across calls is arrival order.
    expect(later.flat()).toEqual(trickle.map((h) => h.event.messageId));
    await w.settledOnce();
  });

  it('a full micro-batch drains at once, not held by the linger; the rest lingers and follows', async () => {
    const w = await world();
    const first = await w.callInFlight();
    const burst = await w.receive(MICRO_BATCH_SIZE + 3);
    for (const held of burst) w.invoker.submit(held);
    // Synchronously, before any timer or immediate could run: the full micro-batch is in the sandbox.
    const ids = burst.map((h) => h.event.messageId);
    expect(w.recording.calls).toEqual([[first.event.messageId], ids.slice(0, MICRO_BATCH_SIZE)]);
    await waitFor('the remainder invoked', () => w.recording.calls.length === 3);
    expect(w.recording.calls[2]).toEqual(ids.slice(MICRO_BATCH_SIZE));
    await w.settledOnce();
    // The cancelled linger fired no extra (empty) call.
    expect(w.recording.calls).toHaveLength(3);
  });

  it('a full micro-batch at an idle invoker goes at once, and the rest lingers behind it', async () => {
    const w = await world();
    const burst = await w.receive(MICRO_BATCH_SIZE + 1);
    for (const held of burst) w.invoker.submit(held);
    const ids = burst.map((h) => h.event.messageId);
    expect(w.recording.calls).toEqual([ids.slice(0, MICRO_BATCH_SIZE)]);
    // The last one arrived with a call in flight: the idle drain scheduled by the first must not take it.
    await nextTurn();
    expect(w.recording.calls).toHaveLength(1);
    await waitFor('the last event invoked', () => w.recording.calls.length === 2);
    expect(w.recording.calls[1]).toEqual(ids.slice(MICRO_BATCH_SIZE));
    await w.settledOnce();
    expect(w.recording.calls).toHaveLength(2);
  });
});
