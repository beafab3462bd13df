// JetStream semantics of an accepted request: 200 only after every event is stored, resent messageIds
// stored once, and a retryable 503/429 with Retry-After whenever JetStream cannot take the events.

import { describe, expect, it } from 'vitest';
import { classifyPublishError } from '../../gateway/publish.js';
import { processLogger } from '../../lib/telemetry.js';
import { NatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait.js';
import { GatewayHarness, gatewayFixture, OTHER_KEY, WRITE_KEY } from './harness.js';

const gw = gatewayFixture();
let h: GatewayHarness;

function events(n: number, pad = 0) {
  return Array.from({ length: n }, (_, i) => ({
    type: 'track',
    userId: `u${i}`,
    event: 'Ordered',
    messageId: `msg-${i}`,
    properties: { pad: 'x'.repeat(pad) },
  }));
}

describe('deduplication', () => {
  it('stores a resent batch once and still answers 200', async () => {
    h = await gw.start();
    const batch = events(5);
    expect((await h.post('/v1/batch', { batch }, { writeKey: WRITE_KEY })).status).toBe(200);
    expect((await h.post('/v1/batch', { batch }, { writeKey: WRITE_KEY })).status).toBe(200);
    expect(await h.count()).toBe(5);
    expect(await h.metric('dfn_gateway_events_duplicate_total', { source: 'web' })).toBe(5);
  });

  it('stores a resent single event once', async () => {
    h = await gw.start();
    const body = { userId: 'u', event: 'E', messageId: 'same' };
    await h.post('/v1/track', body, { writeKey: WRITE_KEY });
    await h.post('/v1/track', body, { writeKey: WRITE_KEY });
    expect(await h.count()).toBe(1);
  });

  it('never merges messageIds that differ only in a lone surrogate, and dedupes each one resent', async () => {
    h = await gw.start();
    // UTF-8 has no encoding for a lone surrogate: a header value would turn the first two into the third.
    const ids = ['order-\ud800', 'order-\udbff', 'order-\ufffd', 'order-\udc00x', 'order-\ud83d\ude00'];
    const batch = ids.map((messageId) => ({ type: 'track', userId: 'u', event: 'E', messageId }));
    expect((await h.post('/v1/batch', { batch }, { writeKey: WRITE_KEY })).body).toMatchObject({
      accepted: ids.length,
      rejected: [],
    });
    expect((await h.post('/v1/batch', { batch }, { writeKey: WRITE_KEY })).status).toBe(200);
    const stored = await h.stored();
    // Each stored once, with the messageId exactly as sent (payloads are JSON, which escapes surrogates).
    expect(stored.map((s) => s.event.messageId)).toEqual(ids);
    expect(new Set(stored.map((s) => s.msgId)).size).toBe(ids.length);
    expect(await h.metric('dfn_gateway_events_duplicate_total', { source: 'web' })).toBe(ids.length);
  });

  it('refuses a body that is not UTF-8, whose bytes would otherwise decode to the same U+FFFD', async () => {
    h = await gw.start();
    const body = (bytes: number[]) =>
      Buffer.concat([
        Buffer.from('{"userId":"u","event":"E","messageId":"order-'),
        Buffer.from(bytes),
        Buffer.from('"}'),
      ]);
    // A lone surrogate written as UTF-8 would be (CESU-8/WTF-8), and a stray continuation byte.
    for (const bytes of [[0xed, 0xa0, 0x80], [0xed, 0xaf, 0xbf], [0x80]]) {
      const res = await h.post('/v1/track', body(bytes), { writeKey: WRITE_KEY, raw: true });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('GW_BODY_NOT_UTF8');
    }
    expect(await h.count()).toBe(0);
  });

  it('keeps events of two sources that reuse a messageId: dedupe is per source', async () => {
    h = await gw.start();
    await h.post('/v1/track', { userId: 'u', event: 'E', messageId: '1' }, { writeKey: WRITE_KEY });
    await h.post('/v1/track', { userId: 'u', event: 'E', messageId: '1' }, { writeKey: OTHER_KEY });
    expect((await h.stored()).map((s) => s.subject)).toEqual([
      `${h.prefix}.events.web.track`,
      `${h.prefix}.events.backend.track`,
    ]);
  });
});

describe('when JetStream cannot take the events', () => {
  it('answers 429 GW_STREAM_FULL with Retry-After when the stream is full, and the resend completes it', async () => {
    h = await gw.start({ streams: { eventsMaxBytes: 4096 } });
    const batch = events(20, 200);
    const full = await h.post('/v1/batch', { batch }, { writeKey: WRITE_KEY });
    expect(full.status).toBe(429);
    expect(full.headers.get('retry-after')).toBe('30');
    expect(full.body.code).toBe('GW_STREAM_FULL');
    expect(full.body.message).toMatch(/\d+ of 20 events not acknowledged/);
    const storedBefore = await h.count();
    expect(storedBefore).toBeGreaterThan(0);
    expect(storedBefore).toBeLessThan(20);
    expect(await h.metric('dfn_gateway_publish_failures_total', { reason: 'GW_STREAM_FULL' })).toBe(1);
    // Not the client's fault: a full stream is no reject.
    expect(await h.metric('dfn_gateway_rejects_total', { reason: 'GW_STREAM_FULL' })).toBe(0);

    // Room is made (consumers caught up, or the operator raised the limit); the client retries.
    const jsm = await h.nc.jetstreamManager();
    await jsm.streams.update(h.stream, { max_bytes: -1 });
    const retried = await h.post('/v1/batch', { batch }, { writeKey: WRITE_KEY });
    expect(retried.status).toBe(200);
    expect((await h.stored()).map((s) => s.event.messageId).sort()).toEqual(
      batch.map((e) => e.messageId).sort(),
    );
  });

  it('answers 503 GW_STREAM_UNAVAILABLE with Retry-After when the stream does not exist', async () => {
    h = await gw.start({ streams: false });
    const res = await h.post('/v1/track', { userId: 'u', event: 'E' }, { writeKey: WRITE_KEY });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.body.code).toBe('GW_STREAM_UNAVAILABLE');
    expect(await h.metric('dfn_gateway_publish_failures_total', { reason: 'GW_STREAM_UNAVAILABLE' })).toBe(1);
  });

  it("logs JetStream's reason with the failed request, for the operator", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const stream = { write: (line: string) => lines.push(JSON.parse(line)) };
    h = await gw.start({ streams: false, gateway: { log: processLogger('gateway', 'warn', stream) } });
    await h.post('/v1/track', { userId: 'u', event: 'E' }, { writeKey: WRITE_KEY });
    expect(lines.find((l) => l.url === '/v1/track')).toMatchObject({
      status: 503,
      code: 'GW_STREAM_UNAVAILABLE',
      error: expect.stringContaining('no responders'),
    });
  });
});

describe('nats-server outage', () => {
  it('answers 503 GW_NATS_UNAVAILABLE while NATS is down, turns unready, and recovers after restart', async () => {
    const own = await NatsServer.start();
    try {
      h = await GatewayHarness.start(own, { streams: { storage: 'file' } });
      expect((await h.get('/readyz')).status).toBe(200);

      await own.stop();
      await waitFor('/readyz to answer 503', async () => (await h.get('/readyz')).status === 503);
      const down = await h.post(
        '/v1/track',
        { userId: 'u', event: 'E', messageId: 'during' },
        { writeKey: WRITE_KEY },
      );
      expect(down.status).toBe(503);
      expect(down.headers.get('retry-after')).toBe('5');
      expect(down.body.code).toBe('GW_NATS_UNAVAILABLE');
      expect((await h.get('/readyz')).body).toMatchObject({ status: 'not ready', nats: 'disconnected' });
      expect((await h.get('/healthz')).status).toBe(200);

      await own.restart();
      await waitFor('/readyz to answer 200', async () => (await h.get('/readyz')).status === 200);
      const up = await h.post(
        '/v1/track',
        { userId: 'u', event: 'E', messageId: 'during' },
        { writeKey: WRITE_KEY },
      );
      expect(up.status).toBe(200);
      const nc = await own.connect();
      const jsm = await nc.jetstreamManager();
      expect((await jsm.streams.info(h.stream)).state.messages).toBe(1);
      await nc.close();
    } finally {
      await h.close().catch(() => {});
      await own.dispose();
    }
  });
});

describe('classifyPublishError', () => {
  it.each([
    [{ code: '503' }, 'GW_STREAM_UNAVAILABLE'],
    [{ code: 'TIMEOUT' }, 'GW_PUBLISH_TIMEOUT'],
    [{ code: 'CONNECTION_CLOSED' }, 'GW_NATS_UNAVAILABLE'],
    [
      { code: '503', api_error: { code: 503, err_code: 10077, description: 'maximum bytes exceeded' } },
      'GW_STREAM_FULL',
    ],
    [
      { code: '503', api_error: { code: 503, err_code: 10077, description: 'maximum messages exceeded' } },
      'GW_STREAM_FULL',
    ],
    [
      { code: '503', api_error: { code: 503, err_code: 10008, description: 'jetstream not enabled' } },
      'GW_STREAM_UNAVAILABLE',
    ],
    [
      { code: '400', api_error: { code: 400, err_code: 10003, description: 'bad request' } },
      'GW_PUBLISH_FAILED',
    ],
    [new Error('surprise'), 'GW_PUBLISH_FAILED'],
  ])('classifies %j as %s', (err, code) => {
    expect(classifyPublishError(err)).toBe(code);
  });
});
