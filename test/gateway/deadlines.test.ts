// Every request has a deadline (headers, then body) and every connection counts against a cap. Clients
// that trickle, send nothing or send what Node refuses get a catalogue code and lose their connection.

import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { GatewayHarness, sharedGateway, WRITE_KEY } from './harness.js';
import { batchBody, parseResponse, slowRequest } from './slow-client.js';

const TIMEOUT_MS = 1000;
const gw = sharedGateway({ gateway: { requestTimeoutMs: TIMEOUT_MS } });

/** One byte every 200 ms: a body of a few hundred bytes would take a minute or more. */
const TRICKLE = { bytesPerTick: 1, intervalMs: 200 };

async function timeouts(): Promise<number> {
  return gw.h.metric('dfn_gateway_rejects_total', { reason: 'GW_REQUEST_TIMEOUT' });
}

describe('the request deadline', () => {
  it('answers a body that trickles in with 408 GW_REQUEST_TIMEOUT, closes its connection, stores nothing', async () => {
    const before = await gw.h.count();
    const slow = slowRequest(gw.h.url, { body: batchBody(5, 'trickle'), writeKey: WRITE_KEY, ...TRICKLE });
    const res = await slow.response;
    expect(res.status).toBe(408);
    expect(res.body).toMatchObject({ success: false, code: 'GW_REQUEST_TIMEOUT' });
    expect(res.headers.connection).toBe('close');
    // Cut off while the client was still sending, not after it finished.
    expect(res.sent).toBeLessThan(res.total);
    expect(await gw.h.count()).toBe(before);
  });

  it('cuts off a gzip body that trickles in the same way', async () => {
    const slow = slowRequest(gw.h.url, {
      body: gzipSync(batchBody(50, 'gz')),
      writeKey: WRITE_KEY,
      headers: { 'content-encoding': 'gzip' },
      ...TRICKLE,
    });
    const res = await slow.response;
    expect(res.status).toBe(408);
    expect(res.body.code).toBe('GW_REQUEST_TIMEOUT');
    expect(res.sent).toBeLessThan(res.total);
  });

  it('answers headers that trickle in with 408 GW_REQUEST_TIMEOUT', async () => {
    const before = await timeouts();
    const slow = slowRequest(gw.h.url, {
      body: batchBody(1, 'slow-head'),
      writeKey: WRITE_KEY,
      trickleHeaders: true,
      ...TRICKLE,
    });
    const res = await slow.response;
    expect(res.status).toBe(408);
    expect(res.body).toMatchObject({ success: false, code: 'GW_REQUEST_TIMEOUT' });
    expect(res.sent).toBeLessThan(res.total);
    expect(await timeouts()).toBe(before + 1);
  });

  it('closes a connection that sends nothing at all', async () => {
    const res = await slowRequest(gw.h.url, { silent: true }).response;
    expect(res.sent).toBe(0);
    // Node counts the idle connection's headers as late: the answer, if the socket still takes one, is ours.
    if (res.status !== 0) expect(res.body.code).toBe('GW_REQUEST_TIMEOUT');
  });

  it('closes the connection when it answers before the body arrived, instead of reading the trickle on', async () => {
    const slow = slowRequest(gw.h.url, {
      body: batchBody(5, 'unknown-key'),
      writeKey: 'not-a-key',
      ...TRICKLE,
    });
    const res = await slow.response;
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('GW_WRITE_KEY_UNKNOWN');
    expect(res.headers.connection).toBe('close');
    expect(res.sent).toBeLessThan(res.total);
  });

  it('bounds a trickle to a path that does not exist as well', async () => {
    const res = await slowRequest(gw.h.url, {
      path: '/v1/nowhere',
      body: batchBody(5, 'nowhere'),
      ...TRICKLE,
    }).response;
    expect([404, 408]).toContain(res.status);
    expect(res.sent).toBeLessThan(res.total);
  });

  it('ends many trickling connections at once, and keeps serving everyone else meanwhile', async () => {
    const slow = Array.from({ length: 40 }, (_, i) =>
      slowRequest(gw.h.url, { body: batchBody(3, `many-${i}`), writeKey: WRITE_KEY, ...TRICKLE }),
    );
    await waitFor('the slow requests to be open', () => slow.every((s) => s.bodySent() > 0));
    const ok = await gw.h.post(
      '/v1/track',
      { userId: 'u', event: 'E', messageId: 'beside-the-trickles' },
      { writeKey: WRITE_KEY },
    );
    expect(ok.status).toBe(200);
    const answers = await Promise.all(slow.map((s) => s.response));
    expect(answers.map((a) => a.status)).toEqual(slow.map(() => 408));
  });

  it('closes connections beyond --max-connections as they arrive, and serves again once they are gone', async () => {
    const h = await GatewayHarness.start(gw.nats, { gateway: { maxConnections: 5 } });
    const connections = () =>
      new Promise<number>((resolve, reject) =>
        h.gateway.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
      );
    try {
      const idle = Array.from({ length: 5 }, () => slowRequest(h.url, { silent: true }));
      await waitFor('five connections open', async () => (await connections()) === 5);
      const sixth = await slowRequest(h.url, { body: batchBody(1, 'sixth'), writeKey: WRITE_KEY }).response;
      expect(sixth.status).toBe(0); // closed without an answer
      for (const s of idle) s.socket.destroy();
      await waitFor('the idle connections to be gone', async () => (await connections()) === 0);
      const res = await h.post('/v1/batch', JSON.parse(batchBody(1, 'after')), { writeKey: WRITE_KEY });
      expect(res.status).toBe(200);
      expect(await h.metric('dfn_gateway_connections_dropped_total')).toBe(1);
    } finally {
      await h.close();
    }
  });

  it('accepts a body that arrives in pieces within the deadline', async () => {
    // Three pieces 50 ms apart against a deadline of a minute: slow is fine, endless is not.
    const h = await GatewayHarness.start(gw.nats, { gateway: { requestTimeoutMs: 60_000 } });
    try {
      const body = batchBody(2, 'pieces');
      const res = await slowRequest(h.url, {
        body,
        writeKey: WRITE_KEY,
        bytesPerTick: Math.ceil(body.length / 3),
        intervalMs: 50,
        headers: { connection: 'close' },
      }).response;
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ success: true, accepted: 2 });
    } finally {
      await h.close();
    }
  });
});

describe('what Node refuses before a request reaches the routes', () => {
  /** Writes raw bytes and reads until the gateway closes the connection. */
  function raw(bytes: string): Promise<ReturnType<typeof parseResponse>> {
    const { hostname, port } = new URL(gw.h.url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => socket.write(bytes));
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('error', () => {});
      socket.on('close', () => resolve(parseResponse(Buffer.concat(chunks))));
      setTimeout(() => reject(new Error('no answer')), 30_000).unref();
    });
  }

  it('answers headers over the size limit with 431 GW_HEADERS_TOO_LARGE', async () => {
    const res = await raw(`POST /v1/track HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(res.status).toBe(431);
    expect(res.body).toMatchObject({ success: false, code: 'GW_HEADERS_TOO_LARGE' });
  });

  it('answers bytes that are not HTTP with 400 GW_MALFORMED_REQUEST', async () => {
    const res = await raw('HELLO THERE\r\n\r\n');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ success: false, code: 'GW_MALFORMED_REQUEST' });
    expect(await gw.h.metric('dfn_gateway_rejects_total', { reason: 'GW_MALFORMED_REQUEST' })).toBe(1);
  });
});
