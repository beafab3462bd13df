// What the gateway adds to an accepted event, as Segment's servers do: batch context and integrations
// merged in, messageId when absent, receivedAt, and the timestamp corrected for client clock skew.

import { describe, expect, it } from 'vitest';
import type { EventType } from '../../api/events.js';
import {
  enrich as enrichWith,
  mergeUnder,
  type RequestDefaults,
  requestContext,
} from '../../gateway/enrich.js';
import { type GatewayHarness, gatewayFixture, WRITE_KEY } from './harness.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RECEIVED = Date.parse('2024-05-01T12:00:00.000Z');

/** The published form, as JSON sees it (fields left undefined are not sent). */
function enrich(
  raw: Record<string, unknown>,
  type: EventType,
  defaults: RequestDefaults,
  receivedAt: number,
) {
  return JSON.parse(JSON.stringify(enrichWith(raw, type, requestContext(defaults, receivedAt))));
}

describe('enrich', () => {
  it('computes timestamp = receivedAt − (sentAt − originalTimestamp)', () => {
    const e = enrich(
      { userId: 'u', timestamp: '2024-05-01T11:00:00.000Z', sentAt: '2024-05-01T11:00:30.000Z' },
      'identify',
      {},
      RECEIVED,
    );
    // The client's clock is an hour behind; the event happened 30 s before it was sent.
    expect(e.timestamp).toBe('2024-05-01T11:59:30.000Z');
    expect(e.originalTimestamp).toBe('2024-05-01T11:00:00.000Z');
    expect(e.sentAt).toBe('2024-05-01T11:00:30.000Z');
    expect(e.receivedAt).toBe('2024-05-01T12:00:00.000Z');
  });

  it("prefers an explicit originalTimestamp over timestamp, and uses the batch's sentAt", () => {
    const e = enrich(
      { userId: 'u', originalTimestamp: '2024-05-01T13:00:00.000Z', timestamp: '2000-01-01T00:00:00.000Z' },
      'identify',
      { sentAt: Date.parse('2024-05-01T13:00:05.000Z') },
      RECEIVED,
    );
    expect(e.timestamp).toBe('2024-05-01T11:59:55.000Z');
    expect(e.sentAt).toBe('2024-05-01T13:00:05.000Z');
  });

  it('keeps the client timestamp (normalized) when no sentAt says how skewed its clock is', () => {
    const e = enrich({ userId: 'u', timestamp: '2024-04-30T10:00:00+02:00' }, 'identify', {}, RECEIVED);
    expect(e.timestamp).toBe('2024-04-30T08:00:00.000Z');
    expect(e.originalTimestamp).toBe('2024-04-30T10:00:00+02:00');
  });

  it('uses receivedAt as the timestamp of an event that has none', () => {
    const e = enrich({ userId: 'u' }, 'identify', { sentAt: RECEIVED - 5000 }, RECEIVED);
    expect(e.timestamp).toBe('2024-05-01T12:00:00.000Z');
    expect(e).not.toHaveProperty('originalTimestamp');
  });

  it("gives every event without a sentAt of its own the batch's, even one without a time", () => {
    const e = enrich({ userId: 'u' }, 'identify', { sentAt: RECEIVED - 5000 }, RECEIVED);
    expect(e.sentAt).toBe('2024-05-01T11:59:55.000Z');
  });

  it('assigns a UUID messageId only when the event has none', () => {
    expect(enrich({ userId: 'u' }, 'identify', {}, RECEIVED).messageId).toMatch(UUID);
    expect(enrich({ userId: 'u', messageId: 'mine' }, 'identify', {}, RECEIVED).messageId).toBe('mine');
  });

  it('stores numeric ids as strings', () => {
    const e = enrich({ userId: 42, groupId: 7 }, 'group', {}, RECEIVED);
    expect(e.userId).toBe('42');
    expect(e.groupId).toBe('7');
  });

  it('uses originalTimestamp as the timestamp when there is no sentAt', () => {
    const e = enrich(
      { userId: 'u', originalTimestamp: '2024-04-30T08:00:00.000Z' },
      'identify',
      {},
      RECEIVED,
    );
    expect(e.timestamp).toBe('2024-04-30T08:00:00.000Z');
  });

  it("leaves the client's event untouched", () => {
    const raw = { userId: 'u', writeKey: 'k', timestamp: '2024-04-30T08:00:00.000Z' };
    const copy = structuredClone(raw);
    const e = enrich(raw, 'identify', { context: { ip: '1' } }, RECEIVED);
    expect(raw).toEqual(copy);
    expect(e).not.toHaveProperty('writeKey');
  });

  it('overwrites a client-sent receivedAt: it is the server time by definition', () => {
    const e = enrich({ userId: 'u', receivedAt: '1999-01-01T00:00:00Z' }, 'identify', {}, RECEIVED);
    expect(e.receivedAt).toBe('2024-05-01T12:00:00.000Z');
  });
});

describe('mergeUnder', () => {
  it("merges nested objects key by key, the event's own values winning", () => {
    const merged = mergeUnder(
      { ip: '1.1.1.1', library: { name: 'batch', version: '1' }, locale: 'en' },
      { library: { name: 'mine' }, locale: null },
    );
    expect(JSON.parse(JSON.stringify(merged))).toEqual({
      ip: '1.1.1.1',
      library: { name: 'mine', version: '1' },
      locale: null,
    });
  });

  it('keeps a "__proto__" key from client JSON as plain data', () => {
    const own = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
    const merged = mergeUnder(JSON.parse('{"__proto__": {"x": 1}}'), own);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.parse(JSON.stringify(merged))).toEqual(
      JSON.parse('{"__proto__": {"x": 1, "polluted": true}, "a": 1}'),
    );
  });
});

describe('through the gateway', () => {
  const gw = gatewayFixture();
  let h: GatewayHarness;

  it('merges batch-level context and integrations into each event, event values winning', async () => {
    h = await gw.start();
    const res = await h.post(
      '/v1/batch',
      {
        context: { ip: '10.0.0.1', library: { name: 'batcher', version: '2.0' } },
        integrations: { All: false, Webhooks: true },
        batch: [
          { type: 'track', userId: 'u', event: 'A', context: { library: { name: 'own' } } },
          { type: 'identify', userId: 'u', integrations: { All: true } },
        ],
      },
      { writeKey: WRITE_KEY },
    );
    expect(res.status).toBe(200);
    const [a, b] = (await h.stored()).map((s) => s.event);
    expect(a!.context).toEqual({ ip: '10.0.0.1', library: { name: 'own', version: '2.0' } });
    expect(a!.integrations).toEqual({ All: false, Webhooks: true });
    expect(b!.context).toEqual({ ip: '10.0.0.1', library: { name: 'batcher', version: '2.0' } });
    expect(b!.integrations).toEqual({ All: true, Webhooks: true });
  });

  it('sets receivedAt and corrects the timestamp with the batch sentAt', async () => {
    h = await gw.start();
    const before = Date.now();
    await h.post(
      '/v1/batch',
      {
        sentAt: '2020-01-01T00:00:10.000Z',
        batch: [{ type: 'identify', userId: 'u', timestamp: '2020-01-01T00:00:00.000Z' }],
      },
      { writeKey: WRITE_KEY },
    );
    const [stored] = await h.stored();
    const receivedAt = Date.parse(stored!.event.receivedAt!);
    expect(receivedAt).toBeGreaterThanOrEqual(before);
    expect(Date.parse(stored!.event.timestamp!)).toBe(receivedAt - 10_000);
    expect(stored!.event.originalTimestamp).toBe('2020-01-01T00:00:00.000Z');
  });

  it('assigns a messageId to an event without one, and uses it as the dedupe id', async () => {
    h = await gw.start();
    await h.post('/v1/track', { userId: 'u', event: 'E' }, { writeKey: WRITE_KEY });
    const [stored] = await h.stored();
    expect(stored!.event.messageId).toMatch(UUID);
    expect(stored!.msgId).toBe(`web:${stored!.event.messageId}`);
  });

  it('keeps unknown fields as the client sent them', async () => {
    h = await gw.start();
    const body = {
      userId: 'u',
      event: 'E',
      properties: { nested: { deep: [1, 'two', null] } },
      custom: { x: 1 },
    };
    await h.post('/v1/track', body, { writeKey: WRITE_KEY });
    expect((await h.stored())[0]!.event).toMatchObject(body);
  });
});
