// The Tracking API endpoints: each single-event path, /v1/batch and its aliases publish to the events
// stream under <prefix>.events.<source>.<type>, answer Segment's {"success": true}, and nothing else.

import { describe, expect, it } from 'vitest';
import { type GatewayHarness, gatewayFixture, OTHER_KEY, WRITE_KEY } from './harness.js';

const gw = gatewayFixture();
let h: GatewayHarness;

const SINGLE_EVENTS = [
  ['/v1/identify', 'identify', { userId: 'u1', traits: { email: 'a@example.com' } }],
  ['/v1/track', 'track', { userId: 'u1', event: 'Signed Up', properties: { plan: 'pro' } }],
  ['/v1/page', 'page', { anonymousId: 'a1', name: 'Home', properties: { path: '/' } }],
  ['/v1/screen', 'screen', { userId: 'u1', name: 'Settings' }],
  ['/v1/group', 'group', { userId: 'u1', groupId: 'g1', traits: { name: 'Acme' } }],
  ['/v1/alias', 'alias', { userId: 'u2', previousId: 'a1' }],
] as const;

describe('single-event endpoints', () => {
  for (const [path, type, body] of SINGLE_EVENTS) {
    it(`POST ${path} publishes one ${type} event under the source's subject`, async () => {
      h = await gw.start();
      const res = await h.post(path, { ...body, messageId: `m-${type}` }, { writeKey: WRITE_KEY });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ success: true });
      const stored = await h.stored();
      expect(stored).toHaveLength(1);
      expect(stored[0]!.subject).toBe(`${h.prefix}.events.web.${type}`);
      expect(stored[0]!.event).toMatchObject({ ...body, type, messageId: `m-${type}` });
    });
  }

  it('takes the type from the path, whatever the body says', async () => {
    h = await gw.start();
    const res = await h.post(
      '/v1/track',
      { type: 'identify', userId: 'u1', event: 'E' },
      { writeKey: WRITE_KEY },
    );
    expect(res.status).toBe(200);
    const [stored] = await h.stored();
    expect(stored!.subject).toBe(`${h.prefix}.events.web.track`);
    expect(stored!.event.type).toBe('track');
  });

  it("publishes under the write key's own source", async () => {
    h = await gw.start();
    expect((await h.post('/v1/track', { userId: 'u', event: 'E' }, { writeKey: OTHER_KEY })).status).toBe(
      200,
    );
    const [stored] = await h.stored();
    expect(stored!.subject).toBe(`${h.prefix}.events.backend.track`);
  });

  it("accepts analytics.js's one-letter paths (/v1/t, /v1/i, /v1/p, /v1/s, /v1/g, /v1/a)", async () => {
    h = await gw.start();
    const short = ['/v1/i', '/v1/t', '/v1/p', '/v1/s', '/v1/g', '/v1/a'];
    for (const [i, [, type, body]] of SINGLE_EVENTS.entries()) {
      const res = await h.post(short[i]!, body, { writeKey: WRITE_KEY });
      expect(res.status, type).toBe(200);
    }
    const stored = await h.stored();
    expect(stored.map((s) => s.event.type)).toEqual(SINGLE_EVENTS.map(([, type]) => type));
  });
});

describe('batch endpoints', () => {
  const batch = [
    { type: 'identify', userId: 'u1', messageId: 'b1' },
    { type: 'track', userId: 'u1', event: 'Clicked', messageId: 'b2' },
    { type: 'page', anonymousId: 'a1', name: 'Docs', messageId: 'b3' },
    { type: 'screen', userId: 'u1', name: 'Home', messageId: 'b4' },
    { type: 'group', userId: 'u1', groupId: 'g1', messageId: 'b5' },
    { type: 'alias', userId: 'u1', previousId: 'a1', messageId: 'b6' },
    { type: 'delete', userId: 'u1', messageId: 'b7' },
  ];

  for (const path of ['/v1/batch', '/v1/import', '/v1/b']) {
    it(`POST ${path} publishes every event of the batch, delete included, in order`, async () => {
      h = await gw.start();
      const res = await h.post(path, { batch }, { writeKey: WRITE_KEY });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ success: true, accepted: 7, rejected: [] });
      const stored = await h.stored();
      expect(stored.map((s) => s.subject)).toEqual(batch.map((e) => `${h.prefix}.events.web.${e.type}`));
      expect(stored.map((s) => s.event.messageId)).toEqual(batch.map((e) => e.messageId));
    });
  }

  it('sets Nats-Msg-Id to the source-scoped messageId, so JetStream can drop resent events', async () => {
    h = await gw.start();
    await h.post('/v1/batch', { batch: batch.slice(0, 2) }, { writeKey: WRITE_KEY });
    expect((await h.stored()).map((s) => s.msgId)).toEqual(['web:b1', 'web:b2']);
  });
});

describe('other paths', () => {
  it('answers unknown paths with 404 GW_ROUTE_NOT_FOUND listing the endpoints', async () => {
    h = await gw.start();
    const res = await h.post('/v1/trak', { userId: 'u', event: 'E' }, { writeKey: WRITE_KEY });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('GW_ROUTE_NOT_FOUND');
    expect(res.body.message).toContain('/v1/track');
    expect(await h.count()).toBe(0);
  });

  it('answers GET on a tracking path with 404: events are only accepted by POST', async () => {
    h = await gw.start();
    const res = await h.get('/v1/track');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('GW_ROUTE_NOT_FOUND');
  });
});

describe('browsers (analytics.js)', () => {
  it('answers a CORS preflight for the tracking paths', async () => {
    h = await gw.start();
    const res = await fetch(`${h.url}/v1/t`, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-headers')).toContain('Authorization');
  });

  it('lets the page read the answer to its POST, errors included', async () => {
    h = await gw.start();
    const ok = await h.post('/v1/t', { userId: 'u', event: 'E' }, { writeKey: WRITE_KEY });
    expect(ok.headers.get('access-control-allow-origin')).toBe('*');
    const denied = await h.post('/v1/t', { userId: 'u', event: 'E' }, { writeKey: 'nope' });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('does not open the operational endpoints to other origins', async () => {
    h = await gw.start();
    expect((await h.get('/metrics')).headers.get('access-control-allow-origin')).toBeNull();
  });
});
