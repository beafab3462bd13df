// Each outcome's effect on JetStream, end to end: a real runner process, a real nats-server, and a real
// HTTP destination. Success acks; discards term with a record; retries follow the schedule, then dead-letter.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerName, eventSubject, type InstanceRef } from '../../api/jetstream.js';
import { formatDeliveryRecord } from '../../cli/commands/deliveries.js';
import { readDeadLetters } from '../../runner/dead-letters.js';
import { readDeliveryRecords } from '../../runner/delivery-records.js';
import { BOUNDS } from '../../sandbox/index.js';
import type { Destination } from '../helpers/destination.js';
import type { NatsServer } from '../helpers/nats-server.js';
import {
  consumerState,
  type Fixture,
  prepareTopology,
  publish,
  type RunnerProcess,
  RunnerWorld,
  runDfn,
  STARTUP_TIMEOUT_MS,
  TEST_INSTANCE,
  track,
  waitFor,
  watchStats,
} from './harness.js';

const FUNCTION = `
async function onTrack(event, settings) {
  const mode = event.properties.mode;
  console.log('delivering ' + event.messageId + ' with key ' + settings.apiKey);
  if (mode === 'hang') await new Promise(() => {});
  if (mode === 'many') {
    // Past the trace bound (tracesPerInvocation) by a few, then a failure: the record shows the count.
    await Promise.all(Array.from({ length: event.properties.requests }, (_, i) => fetch(settings.url + '/many/' + i)));
    throw new Error('gave up after many requests');
  }
  const res = await fetch(settings.url + '/track', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer ' + settings.apiKey },
    body: JSON.stringify(event),
  });
  if (mode === 'bad') throw new Error('cannot map event with key ' + settings.apiKey);
  if (mode === 'invalid') throw new ValidationError('properties.email is required');
  if (mode === 'long') throw new Error('key ' + settings.apiKey + ' failed: ' + '🙂'.repeat(2000));
  if (res.status === 429 || res.status >= 500) throw new RetryError('destination answered ' + res.status);
}
`;

const SECRET = 'sk_live_very_secret_42';

describe('outcomes on JetStream', () => {
  let w: RunnerWorld;
  let nats: NatsServer;
  let f: Fixture;
  let dest: Destination;
  let runner: RunnerProcess;
  let dir: string;
  let stats: ReturnType<typeof watchStats>;
  /** messageIds the destination answers 503 for, until removed. */
  const down = new Set<string>();
  let deadLetteredId = '';

  const requestsFor = (id: string) =>
    dest.requests.filter((r) => r.url === '/track' && r.json().messageId === id);
  const recordsFor = async (id: string) =>
    (await readDeliveryRecords(f.jsm, f.t, TEST_INSTANCE)).filter((r) => r.messageId === id);
  const settledAll = async () => {
    const s = await consumerState(f, consumerName(TEST_INSTANCE));
    return s.pending === 0 && s.ackPending === 0;
  };

  beforeAll(async () => {
    w = await RunnerWorld.start();
    ({ nats, f, dest } = w);
    dest.respond = (req) =>
      req.url === '/track' && down.has(req.json().messageId)
        ? { status: 503, body: { error: 'unavailable' } }
        : undefined;
    stats = watchStats(f);
    dir = w.configDir({
      functionSource: FUNCTION,
      settings: { url: dest.url },
      secrets: { apiKey: SECRET },
      config: { retry: { maxAttempts: 3, delaysMs: [300, 600], jitter: 0 }, limits: { timeoutMs: 1000 } },
    });
    runner = w.startRunner(dir);
    await runner.consuming();
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    stats?.stop();
    await w?.dispose();
  });

  it('acknowledges a delivered event once the function succeeded', async () => {
    const before = stats.latest()?.counters.delivered ?? 0;
    const event = track({ mode: 'ok', total: 10 });
    await publish(f, [event]);
    await waitFor('the delivery', () => requestsFor(event.messageId!).length === 1);
    await waitFor('the ack', settledAll);
    await waitFor('stats to count it', () => (stats.latest()?.counters.delivered ?? 0) > before);
    expect(requestsFor(event.messageId!)[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
  });

  it('terminates a Bad Request without retrying it and records logs and traces with secrets redacted', async () => {
    const event = track({ mode: 'bad' });
    await publish(f, [event]);
    const [record] = await waitFor('the delivery record', async () => {
      const r = await recordsFor(event.messageId!);
      return r.length ? r : undefined;
    });
    await waitFor('the term', settledAll);
    expect(requestsFor(event.messageId!)).toHaveLength(1);
    expect(record).toMatchObject({
      instance: TEST_INSTANCE,
      revision: 'rev-1',
      eventType: 'track',
      eventName: 'Order Completed',
      disposition: 'discard',
      errorType: 'BadRequest',
      attempt: 1,
      maxAttempts: 3,
      batch: false,
    });
    expect(record!.message).toContain('cannot map event with key');
    expect(record!.logs.join('\n')).toContain(`delivering ${event.messageId}`);
    expect(record!.requests).toHaveLength(1);
    expect(record!.requests[0]).toMatchObject({ method: 'POST', url: `${dest.url}/track`, status: 200 });
    expect(JSON.stringify(record)).not.toContain(SECRET);
  });

  it('says in the delivery record how many requests went untraced past the trace bound', async () => {
    const extra = 4;
    const event = track({ mode: 'many', requests: BOUNDS.tracesPerInvocation + extra });
    await publish(f, [event]);
    const [record] = await waitFor('the delivery record', async () => {
      const r = await recordsFor(event.messageId!);
      return r.length ? r : undefined;
    });
    expect(dest.requests.filter((r) => r.url.startsWith('/many/'))).toHaveLength(
      BOUNDS.tracesPerInvocation + extra,
    );
    expect(record).toMatchObject({ errorType: 'BadRequest', requestsNotTraced: extra });
    expect(record!.requests).toHaveLength(BOUNDS.tracesPerInvocation);
    expect(formatDeliveryRecord(record!)).toContain(
      `    … and ${extra} more requests, not traced (at most ${BOUNDS.tracesPerInvocation} are, per invocation, within 1 MiB of them and 16 MiB for all invocations at once)`,
    );
    // A record of an attempt that traced all its requests says nothing of the kind.
    const [traced] = (await readDeliveryRecords(f.jsm, f.t, TEST_INSTANCE)).filter(
      (r) => r.messageId !== event.messageId,
    );
    expect(traced).toBeDefined();
    expect(traced).not.toHaveProperty('requestsNotTraced');
    expect(formatDeliveryRecord(traced!)).not.toContain('not traced');
    await waitFor('the term', settledAll);
  });

  it('reports the last failed attempt in its stats: type, time, message redacted and cut to 512 characters', async () => {
    const before = Date.now();
    const event = track({ mode: 'long' });
    await publish(f, [event]);
    const lastError = await waitFor('the failure in the stats', () => {
      const e = stats.latest()?.lastError;
      return e && Date.parse(e.time) >= before - 1000 && e.message.startsWith('key ') ? e : undefined;
    });
    expect(lastError.type).toBe('BadRequest');
    expect(lastError.message.startsWith('key [redacted] failed: 🙂')).toBe(true);
    expect(lastError.message.length).toBeLessThanOrEqual(512);
    expect(lastError.message.endsWith('🙂…')).toBe(true); // cut between characters, never inside one
    expect(JSON.stringify(stats.latest())).not.toContain(SECRET);
  });

  it('terminates a ValidationError as Message Rejected', async () => {
    const event = track({ mode: 'invalid' });
    await publish(f, [event]);
    const [record] = await waitFor('the record', async () => {
      const r = await recordsFor(event.messageId!);
      return r.length ? r : undefined;
    });
    expect(record).toMatchObject({
      disposition: 'discard',
      errorType: 'MessageRejected',
      message: 'properties.email is required',
    });
    await waitFor('the term', settledAll);
    expect(requestsFor(event.messageId!)).toHaveLength(1);
  });

  it('terminates an event type the function has no handler for as Unsupported Event Type', async () => {
    const event = { type: 'identify', userId: 'u-9', messageId: `identify-${Date.now()}`, traits: {} };
    await publish(f, [event]);
    const [record] = await waitFor('the record', async () => {
      const r = await recordsFor(event.messageId);
      return r.length ? r : undefined;
    });
    expect(record).toMatchObject({
      disposition: 'discard',
      errorType: 'UnsupportedEventType',
      eventType: 'identify',
    });
  });

  it('terminates a payload that is not an event as Message Rejected', async () => {
    await f.js.publish(eventSubject(f.t, 'web', 'track'), 'this is not json');
    const record = await waitFor('the record', async () =>
      (await readDeliveryRecords(f.jsm, f.t, TEST_INSTANCE)).find((r) => r.eventType === 'unknown'),
    );
    expect(record).toMatchObject({ disposition: 'discard', errorType: 'MessageRejected', messageId: null });
    expect(record.message).toMatch(/not valid JSON/);
    await waitFor('the term', settledAll);
  });

  it('retries a Timeout with a record naming it', async () => {
    const event = track({ mode: 'hang' });
    await publish(f, [event]);
    const record = await waitFor('the retry record', async () =>
      (await recordsFor(event.messageId!)).find((r) => r.attempt === 1),
    );
    expect(record).toMatchObject({ disposition: 'retry', errorType: 'Timeout', attempt: 1 });
    // The delay after attempt 1 is the schedule's first (300 ms), not its second (600 ms).
    const delay = Date.parse(record.nextAttemptAt!) - Date.parse(record.at);
    expect(delay).toBeGreaterThan(250);
    expect(delay).toBeLessThanOrEqual(300);
  });

  it('retries on the schedule, then dead-letters the full event after the last attempt', async () => {
    const event = track({ mode: 'down', total: 99, nested: { a: [1, 2] } }, { context: { ip: '1.2.3.4' } });
    down.add(event.messageId!);
    await publish(f, [event]);
    const dead = await waitFor(
      'the dead letter',
      async () => {
        for await (const d of readDeadLetters(f.jsm, f.t, TEST_INSTANCE)) {
          if (d.deadLetter.event.messageId === event.messageId) return d;
        }
        return undefined;
      },
      30_000,
    );
    deadLetteredId = event.messageId!;
    const attempts = requestsFor(event.messageId!);
    expect(attempts).toHaveLength(3);
    expect(dead.deadLetter).toMatchObject({
      instance: TEST_INSTANCE,
      attempts: 3,
      lastError: { errorType: 'Retry', message: 'destination answered 503' },
      crashes: 0,
      // The last attempt was a re-enqueued copy.
      subject: 'dfn.retry.default.crm',
    });
    expect(dead.deadLetter.event).toEqual(event);
    expect(Date.parse(dead.deadLetter.deadLetteredAt)).toBeGreaterThanOrEqual(
      Date.parse(dead.deadLetter.publishedAt),
    );

    const records = await recordsFor(event.messageId!);
    expect(records.map((r) => `${r.attempt}:${r.disposition}`).sort()).toEqual([
      '1:retry',
      '2:retry',
      '3:dead-letter',
    ]);
    // The schedule: attempt 2 no sooner than 300 ms after attempt 1's failure, attempt 3 600 ms after attempt 2's.
    const byAttempt = new Map(records.map((r) => [r.attempt, r]));
    const failedAt = (n: number) => Date.parse(byAttempt.get(n)!.at);
    const startedAt = (n: number) => Date.parse(byAttempt.get(n)!.at) - byAttempt.get(n)!.durationMs;
    // A record's `at` is stamped after the retry was scheduled, later by however long a loaded machine takes to
    // get there: the slack allows for that, far below the delays (an unscheduled retry would come at once).
    expect(startedAt(2) - failedAt(1)).toBeGreaterThanOrEqual(300 - 100);
    expect(startedAt(3) - failedAt(2)).toBeGreaterThanOrEqual(600 - 100);
  });

  it('replays a dead letter to its instance alone, which then delivers it', async () => {
    expect(deadLetteredId).not.toBe('');
    const other: InstanceRef = { namespace: 'default', name: 'other' };
    await prepareTopology(f, { instance: other });
    down.delete(deadLetteredId);
    const before = requestsFor(deadLetteredId).length;

    const result = await runDfn([
      'replay',
      'default/crm',
      '--message-id',
      deadLetteredId,
      '--nats-url',
      nats.url,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      'Replayed 1 of 1 dead-lettered event selected for default/crm (removed from the dead-letter stream).\n' +
        'Requested 1 messageId: 1 dead-lettered, 0 not.\n',
    );
    expect(result.code).toBe(0);

    await waitFor('the replayed delivery', () => requestsFor(deadLetteredId).length > before);
    await waitFor('the ack', settledAll);
    const stillDead: string[] = [];
    for await (const d of readDeadLetters(f.jsm, f.t, TEST_INSTANCE))
      stillDead.push(d.deadLetter.event.messageId!);
    expect(stillDead).not.toContain(deadLetteredId);
    // Replays go to the instance's own subject: another instance of the same source gets nothing.
    expect((await consumerState(f, consumerName(other))).pending).toBe(0);
  });

  it('publishes stats whose counters add up', async () => {
    await waitFor('everything settled', settledAll);
    const s = await waitFor('settled stats', () => {
      const latest = stats.latest();
      return latest && latest.inFlight === 0 && latest.counters.deadLettered >= 1 ? latest : undefined;
    });
    const c = s.counters;
    const discarded = Object.values(c.discarded).reduce((a, b) => a + (b ?? 0), 0);
    expect(c.received).toBe(
      c.delivered + c.filtered + c.retried + discarded + c.deadLettered + c.released + s.inFlight,
    );
    // BadRequest: the bad mode, the long one and the untraced requests.
    expect(c.discarded).toMatchObject({ BadRequest: 3, MessageRejected: 2, UnsupportedEventType: 1 });
    expect(c.deadLettered).toBeGreaterThanOrEqual(1);
    expect(c.invocations).toBeGreaterThan(0);
    expect(s).toMatchObject({ instance: TEST_INSTANCE, revision: 'rev-1' });
  });

  it('serves /healthz, /readyz and Prometheus /metrics', async () => {
    const port = await runner.httpPort();
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', reason: 'consuming' });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(
      /^dfn_runner_events_delivered_total\{namespace="default",function_instance="crm"\} [1-9]\d*$/m,
    );
    expect(metrics).toMatch(/^dfn_runner_events_discarded_total\{[^}]*error_type="BadRequest"\} 3$/m);
    expect(metrics).toContain('# TYPE dfn_runner_in_flight_events gauge');
  });

  it("serves the process's default metrics beside its own, prefixed dfn_runner_", async () => {
    const port = await runner.httpPort();
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^dfn_runner_process_cpu_seconds_total \d/m);
    expect(metrics).toMatch(/^# TYPE dfn_runner_nodejs_eventloop_lag_seconds gauge$/m);
    expect(metrics).toMatch(
      /^dfn_runner_info\{namespace="default",function_instance="crm",revision="rev-1",replica="[^"]+"\} 1$/m,
    );
  });
});
