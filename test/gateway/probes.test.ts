// The operational surface: /healthz, /readyz and /metrics (requests, events, bytes, rejects by reason,
// publish latency), and a graceful stop that finishes what it accepted.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../gateway/server.js';
import { NatsServer } from '../helpers/nats-server.js';
import { basic, type GatewayHarness, gatewayFixture, WRITE_KEY } from './harness.js';

const gw = gatewayFixture();
let h: GatewayHarness;

describe('probes', () => {
  it('/healthz answers 200 while the process is fine', async () => {
    h = await gw.start();
    const res = await h.get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 with the NATS state when connected', async () => {
    h = await gw.start();
    const res = await h.get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready', nats: 'connected' });
  });

  it('/readyz answers 503 while NATS has not been reached yet, and requests get 503 at once', async () => {
    const absent = await NatsServer.start();
    await absent.stop();
    // Built by hand: the harness waits for the first connection, which is the point here.
    const dir = mkdtempSync(join(tmpdir(), 'dfn-gw-'));
    const file = join(dir, 'keys.yaml');
    writeFileSync(file, `${WRITE_KEY}: web\n`);
    const gateway = await createGateway({
      writeKeysFile: file,
      natsUrl: absent.url,
      natsReconnectWaitMs: 100,
    });
    try {
      const ready = await gateway.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ status: 'not ready', nats: 'connecting' });
      const res = await gateway.app.inject({
        method: 'POST',
        url: '/v1/track',
        headers: { 'content-type': 'application/json' },
        payload: { writeKey: WRITE_KEY, userId: 'u', event: 'E' },
      });
      expect(res.statusCode).toBe(503);
      expect(res.json().code).toBe('GW_NATS_UNAVAILABLE');
      expect(res.headers['retry-after']).toBe('5');
    } finally {
      await gateway.close();
      await absent.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('/metrics', () => {
  it('serves the Prometheus text format', async () => {
    h = await gw.start();
    const res = await h.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.body).toContain('# TYPE dfn_gateway_requests_total counter');
    expect(res.body).toContain('# TYPE dfn_gateway_publish_duration_seconds histogram');
  });

  it('counts requests, events, bytes, rejects by reason and publish latency', async () => {
    h = await gw.start();
    const body = {
      batch: [
        { type: 'track', userId: 'u', event: 'A' },
        { type: 'track', userId: 'u', event: 'B' },
        { type: 'identify', userId: 'u' },
        { type: 'track', userId: 'u' },
      ],
    };
    await h.post('/v1/batch', body, { writeKey: WRITE_KEY });
    await h.post('/v1/track', { userId: 'u', event: 'C' }, { writeKey: 'unknown' });
    await h.post('/v1/track', '{', { writeKey: WRITE_KEY, raw: true });

    expect(await h.metric('dfn_gateway_requests_total', { route: '/v1/batch', status: '200' })).toBe(1);
    expect(await h.metric('dfn_gateway_requests_total', { route: '/v1/track', status: '401' })).toBe(1);
    expect(await h.metric('dfn_gateway_requests_total', { route: '/v1/track', status: '400' })).toBe(1);
    expect(await h.metric('dfn_gateway_events_total', { source: 'web', type: 'track' })).toBe(2);
    expect(await h.metric('dfn_gateway_events_total', { source: 'web', type: 'identify' })).toBe(1);
    expect(await h.metric('dfn_gateway_request_bytes_total', { route: '/v1/batch' })).toBe(
      Buffer.byteLength(JSON.stringify(body)),
    );
    expect(await h.metric('dfn_gateway_rejects_total', { reason: 'GW_TRACK_EVENT_MISSING' })).toBe(1);
    expect(await h.metric('dfn_gateway_rejects_total', { reason: 'GW_WRITE_KEY_UNKNOWN' })).toBe(1);
    expect(await h.metric('dfn_gateway_rejects_total', { reason: 'GW_MALFORMED_JSON' })).toBe(1);
    expect(await h.metric('dfn_gateway_publish_duration_seconds_count')).toBe(1);
    expect(await h.metric('dfn_gateway_publish_duration_seconds_bucket', { le: '+Inf' })).toBe(1);
    expect(await h.metric('dfn_gateway_nats_connected')).toBe(1);
    expect(await h.metric('dfn_gateway_write_keys')).toBe(2);
    expect(await h.metric('dfn_gateway_events_in_flight')).toBe(0);
  });
});

describe('graceful stop', () => {
  it('finishes a request that had started before close(), then refuses new connections', async () => {
    h = await gw.start();
    const body = Buffer.from(
      JSON.stringify({ batch: [{ type: 'identify', userId: 'u', messageId: 'last' }] }),
    );
    const started = new Promise((r) => h.gateway.app.server.once('request', r));
    const req = request(`${h.url}/v1/batch`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: basic(WRITE_KEY),
        'content-length': body.length,
      },
    });
    const answered = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
    });
    req.write(body.subarray(0, 10));
    await started;

    const closing = h.gateway.close();
    req.end(body.subarray(10));
    expect(await answered).toBe(200);
    await closing;
    expect((await h.stored()).map((s) => s.event.messageId)).toEqual(['last']);
    await expect(fetch(`${h.url}/healthz`)).rejects.toThrow();
  });
});
