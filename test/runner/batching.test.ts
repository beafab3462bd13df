// onBatch delivery: flush on size and on wait, mixed types in one batch, a lone event to its single
// handler, and partial batch results retrying only the failed events.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerName } from '../../api/jetstream.js';
import { readDeliveryRecords } from '../../runner/delivery-records.js';
import type { Destination, RecordedRequest } from '../helpers/destination.js';
import {
  consumerState,
  type Fixture,
  publish,
  type RunnerProcess,
  RunnerWorld,
  STARTUP_TIMEOUT_MS,
  TEST_INSTANCE,
  track,
  waitFor,
} from './harness.js';

const FUNCTION = `
async function onBatch(events, settings) {
  const res = await fetch(settings.url + '/batch', { method: 'POST', body: JSON.stringify(events) });
  return (await res.json()).statuses;
}
async function onTrack(event, settings) {
  await fetch(settings.url + '/single', { method: 'POST', body: JSON.stringify(event) });
}
`;

const MAX_WAIT_MS = 1500;

describe('batching', () => {
  let w: RunnerWorld;
  let f: Fixture;
  let dest: Destination;
  let runner: RunnerProcess;
  let dir: string;
  /** messageIds whose first batch attempt the destination answers 500 for. */
  const failOnce = new Set<string>();
  /** messageIds the destination always rejects with 400. */
  const rejected = new Set<string>();

  const batches = () => dest.requests.filter((r) => r.url === '/batch');
  const idsOf = (r: RecordedRequest) => (r.json() as Array<{ messageId: string }>).map((e) => e.messageId);
  const batchesWith = (id: string) => batches().filter((b) => idsOf(b).includes(id));
  const singlesWith = (id: string) =>
    dest.requests.filter((r) => r.url === '/single' && r.json().messageId === id);
  const settledAll = async () => {
    const s = await consumerState(f, consumerName(TEST_INSTANCE));
    return s.pending === 0 && s.ackPending === 0;
  };

  beforeAll(async () => {
    w = await RunnerWorld.start();
    ({ f, dest } = w);
    dest.respond = (req) => {
      if (req.url !== '/batch') return undefined;
      const statuses = (req.json() as Array<{ messageId: string }>).map((e) => {
        if (rejected.has(e.messageId)) return { status: 400, errormessage: 'unknown product' };
        if (failOnce.delete(e.messageId)) return { status: 500, errormessage: 'try later' };
        return { status: 200 };
      });
      return { status: 200, body: { statuses } };
    };
    dir = w.configDir({
      functionSource: FUNCTION,
      settings: { url: dest.url },
      config: { batching: { enabled: true, maxSize: 5, maxWaitMs: MAX_WAIT_MS }, retry: { delaysMs: [100] } },
    });
    runner = w.startRunner(dir);
    await runner.consuming();
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await w?.dispose();
  });

  it('flushes a batch as soon as it reaches maxSize', async () => {
    const events = Array.from({ length: 5 }, () => track());
    const publishedAt = Date.now();
    await publish(f, events);
    const batch = await waitFor('a full batch', () =>
      batches().find((b) => idsOf(b).includes(events[0]!.messageId!)),
    );
    expect(idsOf(batch).sort()).toEqual(events.map((e) => e.messageId).sort());
    // Full batches do not wait for maxWait.
    expect(Date.now() - publishedAt).toBeLessThan(MAX_WAIT_MS);
    await waitFor('the acks', settledAll);
  });

  it('flushes a partial batch after maxWait, with mixed event types', async () => {
    const events = [
      track(),
      { type: 'identify', userId: 'u1', messageId: `id-${Date.now()}`, traits: { plan: 'pro' } },
      { type: 'page', userId: 'u1', messageId: `pg-${Date.now()}`, name: 'Home' },
    ];
    const publishedAt = Date.now();
    await publish(f, events);
    const batch = await waitFor('the partial batch', () =>
      batches().find((b) => idsOf(b).includes(events[1]!.messageId!)),
    );
    const receivedAt = Date.now();
    expect(idsOf(batch).sort()).toEqual(events.map((e) => e.messageId).sort());
    expect((batch.json() as Array<{ type: string }>).map((e) => e.type).sort()).toEqual([
      'identify',
      'page',
      'track',
    ]);
    expect(receivedAt - publishedAt).toBeGreaterThanOrEqual(MAX_WAIT_MS - 50);
    await waitFor('the acks', settledAll);
  });

  it('hands a lone event to its single handler', async () => {
    const event = track();
    await publish(f, [event]);
    await waitFor('the single-handler call', () => singlesWith(event.messageId!).length === 1);
    expect(batchesWith(event.messageId!)).toHaveLength(0);
    await waitFor('the ack', settledAll);
  });

  it('retries only the events a batch reported as failed, and discards the rejected ones', async () => {
    const events = Array.from({ length: 5 }, () => track());
    const [flaky, bad] = [events[1]!.messageId!, events[3]!.messageId!];
    failOnce.add(flaky);
    rejected.add(bad);
    await publish(f, events);
    await waitFor(
      'the retried event to be delivered',
      () => singlesWith(flaky).length + batchesWith(flaky).length >= 2,
    );
    await waitFor('everything settled', settledAll);
    for (const e of events) {
      if (e.messageId === flaky) continue;
      // Delivered (or rejected) in the first batch, never sent again.
      expect([e.messageId, batchesWith(e.messageId!).length + singlesWith(e.messageId!).length]).toEqual([
        e.messageId,
        1,
      ]);
    }
    const records = await readDeliveryRecords(f.jsm, f.t, TEST_INSTANCE);
    expect(records.find((r) => r.messageId === flaky)).toMatchObject({
      disposition: 'retry',
      errorType: 'Retry',
      message: 'try later',
      batch: true,
    });
    expect(records.find((r) => r.messageId === bad)).toMatchObject({
      disposition: 'discard',
      errorType: 'BadRequest',
      message: 'unknown product',
      batch: true,
    });
  });

  it('shows on /metrics every sandbox call with the events it carried', async () => {
    await waitFor('everything settled', settledAll);
    const port = await runner.httpPort();
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const value = (series: string, first = '') => {
      const m = new RegExp(`^${series}\\{${first}[^}]*function_instance="crm"[^}]*\\} (\\S+)$`, 'm').exec(
        metrics,
      );
      if (!m) throw new Error(`no ${series} in\n${metrics}`);
      return Number(m[1]);
    };
    // Each onBatch call posted its batch once; each single-handler event posted itself once. So the
    // events the calls carried are those of every /batch request plus every /single request.
    const batchEvents = batches().reduce((n, b) => n + idsOf(b).length, 0);
    const singles = dest.requests.filter((r) => r.url === '/single').length;
    expect(value('dfn_runner_sandbox_call_events_sum')).toBe(batchEvents + singles);
    const calls = value('dfn_runner_sandbox_call_events_count');
    expect(calls).toBeGreaterThanOrEqual(batches().length + 1);
    expect(calls).toBeLessThanOrEqual(batches().length + singles);
    // No call carried more than a batch holds (maxSize 5).
    expect(value('dfn_runner_sandbox_call_events_bucket', 'le="8",')).toBe(calls);
    expect(value('dfn_runner_sandbox_call_seconds_count')).toBe(calls);
  });
});
