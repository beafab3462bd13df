// Segment's own Node client, changed only in its host, sends to the gateway over real HTTP: every call
// type lands in the stream intact with the client's messageIds, and an outage is bridged by its retries.

import { Analytics } from '@segment/analytics-node';
import { describe, expect, it } from 'vitest';
import type { SegmentEvent } from '../../api/events.js';
import { NatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait.js';
import { GatewayHarness, gatewayFixture, WRITE_KEY } from './harness.js';

const gw = gatewayFixture();
let h: GatewayHarness;

interface Sent {
  url: string;
  events: SegmentEvent[];
}

/** A client pointed at the gateway, recording what it sends and what it hears back. */
function client(url: string, settings: { flushAt?: number; maxRetries?: number } = {}) {
  const analytics = new Analytics({ writeKey: WRITE_KEY, host: url, flushInterval: 50, ...settings });
  const sent: Sent[] = [];
  const statuses: number[] = [];
  analytics.on('http_request', (req) => {
    sent.push({ url: req.url, events: JSON.parse(req.body).batch });
  });
  analytics.on('http_response', (res) => {
    statuses.push(res.status);
  });
  const errors: unknown[] = [];
  analytics.on('error', (err) => errors.push(err));
  return { analytics, sent, statuses, errors };
}

/** Fields the gateway sets or rewrites (Segment's server-side fields); everything else must be intact. */
function clientFields(e: SegmentEvent): Record<string, unknown> {
  const { timestamp: _t, receivedAt: _r, originalTimestamp: _o, sentAt: _s, ...rest } = e;
  return rest;
}

describe('@segment/analytics-node', () => {
  it('posts to /v1/batch by default (the `path` option) with Basic auth', async () => {
    h = await gw.start();
    const c = client(h.url);
    c.analytics.track({ userId: 'u1', event: 'Probe' });
    await c.analytics.closeAndFlush({ timeout: 20_000 });
    expect(c.sent.map((s) => s.url)).toEqual([`${h.url}/v1/batch`]);
    expect(c.statuses).toEqual([200]);
  });

  it('delivers identify, track, page, screen, group and alias intact with its messageIds', async () => {
    h = await gw.start();
    const c = client(h.url, { flushAt: 6 });
    c.analytics.identify({ userId: 'u1', traits: { email: 'ada@example.com', plan: 'pro' } });
    c.analytics.track({
      userId: 'u1',
      event: 'Order Completed',
      properties: { total: 42.5, items: [{ sku: 'a' }] },
    });
    c.analytics.page({
      anonymousId: 'anon-1',
      category: 'Docs',
      name: 'Install',
      properties: { path: '/install' },
    });
    c.analytics.screen({ userId: 'u1', name: 'Settings', properties: { tab: 'billing' } });
    c.analytics.group({ userId: 'u1', groupId: 'acme', traits: { employees: 20 } });
    c.analytics.alias({ userId: 'u1', previousId: 'anon-1' });
    await c.analytics.closeAndFlush({ timeout: 20_000 });
    expect(c.errors).toEqual([]);
    expect(c.statuses.every((s) => s === 200)).toBe(true);

    const sentEvents = c.sent.flatMap((s) => s.events);
    expect(sentEvents.map((e) => e.type)).toEqual(['identify', 'track', 'page', 'screen', 'group', 'alias']);
    const stored = await h.stored();
    expect(stored.map((s) => s.event.messageId)).toEqual(sentEvents.map((e) => e.messageId));
    expect(stored.map((s) => s.subject)).toEqual(sentEvents.map((e) => `${h.prefix}.events.web.${e.type}`));
    for (const [i, s] of stored.entries()) {
      const original = sentEvents[i]!;
      expect(clientFields(s.event)).toEqual(clientFields(original));
      // The client's own time is kept as originalTimestamp; timestamp is corrected by the skew (here ~0).
      expect(s.event.originalTimestamp).toBe(original.timestamp);
      expect(Number.isNaN(Date.parse(s.event.timestamp!))).toBe(false);
      expect(s.event.receivedAt).toBeDefined();
    }
  });

  it('gets a retryable status while nats-server is down, and its retries deliver after the restart', async () => {
    const own = await NatsServer.start();
    try {
      h = await GatewayHarness.start(own, { streams: { storage: 'file' } });
      const c = client(h.url, { flushAt: 1, maxRetries: 50 });
      await own.stop();
      await waitFor('/readyz to answer 503', async () => (await h.get('/readyz')).status === 503);

      let delivered: unknown = null;
      c.analytics.track({ userId: 'u1', event: 'Survived', messageId: 'outage-1' }, (err) => {
        delivered = err ?? undefined;
      });
      // The client has been told to come back later at least once...
      await waitFor('a first answer to the client', () => c.statuses.length > 0);
      expect(c.statuses[0]).toBe(503);

      // ...and once NATS is back, one of its retries is accepted.
      await own.restart();
      await waitFor('the track call to settle', () => delivered !== null);
      expect(delivered).toBeUndefined();
      expect(c.statuses.at(-1)).toBe(200);
      expect(c.statuses.slice(0, -1).every((s) => s === 503)).toBe(true);

      const stored = await h.stored();
      expect(stored.map((s) => s.event.messageId)).toEqual(['outage-1']);
      await c.analytics.closeAndFlush({ timeout: 5000 });
    } finally {
      await h.close().catch(() => {});
      await own.dispose();
    }
  });
});
