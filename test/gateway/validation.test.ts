// Segment's input rules at the edge: JSON only, 32 KB per event, 500 KB and 2,500 events per batch,
// identity and per-type required fields; a batch accepts its valid events and lists the rejected ones.

import { deflateSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { LIMITS } from '../../gateway/validate.js';
import { GatewayHarness, sharedGateway, WRITE_KEY } from './harness.js';

const shared = sharedGateway();

// One gateway for the file: every test here expects nothing published, and checks it.
afterEach(async () => {
  expect(await shared.h.count()).toBe(0);
});

const auth = { writeKey: WRITE_KEY };

/** A string property that makes a serialized event exactly `bytes` long. */
function eventOfSize(bytes: number): Record<string, unknown> {
  const base = { type: 'track', userId: 'u1', event: 'Big', properties: { pad: '' } };
  const padding = bytes - Buffer.byteLength(JSON.stringify(base));
  return { ...base, properties: { pad: 'x'.repeat(padding) } };
}

describe('the request body', () => {
  it('rejects a form-encoded body with 415 GW_UNSUPPORTED_MEDIA_TYPE', async () => {
    const res = await shared.h.post('/v1/track', 'userId=u1&event=E', {
      ...auth,
      raw: true,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(415);
    expect(res.body.code).toBe('GW_UNSUPPORTED_MEDIA_TYPE');
    expect(res.body.message).toContain('application/x-www-form-urlencoded');
  });

  it('rejects a body without Content-Type with 415, saying the header is missing', async () => {
    const res = await fetch(`${shared.h.url}/v1/track`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` },
      body: new Uint8Array(Buffer.from('{"userId":"u1","event":"E"}')),
    });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { message: string }).message).toContain('Content-Type header is missing');
  });

  it('rejects malformed JSON with 400 GW_MALFORMED_JSON and the parser message', async () => {
    const res = await shared.h.post('/v1/track', '{"userId": "u1",', { ...auth, raw: true });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('GW_MALFORMED_JSON');
    expect(res.body.message).toMatch(/not valid JSON: .+/);
  });

  it('rejects an empty JSON body with 400 GW_MALFORMED_JSON', async () => {
    const res = await shared.h.post('/v1/track', '', { ...auth, raw: true });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'GW_MALFORMED_JSON', message: expect.stringContaining('empty') });
  });

  it.each([['[1,2]'], ['"text"'], ['42'], ['null']])(
    'rejects the JSON value %s with 400 GW_BODY_NOT_OBJECT',
    async (raw) => {
      const res = await shared.h.post('/v1/track', raw, { ...auth, raw: true });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('GW_BODY_NOT_OBJECT');
    },
  );

  it('rejects an unsupported Content-Encoding with 415 GW_UNSUPPORTED_ENCODING', async () => {
    const res = await shared.h.post('/v1/track', '{}', {
      ...auth,
      raw: true,
      headers: { 'content-encoding': 'br' },
    });
    expect(res.status).toBe(415);
    expect(res.body.code).toBe('GW_UNSUPPORTED_ENCODING');
  });

  it('rejects a corrupt gzip body with 400 GW_MALFORMED_BODY', async () => {
    const res = await shared.h.post('/v1/track', new Uint8Array([0x1f, 0x8b, 1, 2, 3, 4]), {
      ...auth,
      raw: true,
      headers: { 'content-encoding': 'gzip' },
    });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('GW_MALFORMED_BODY');
  });

  it('applies the batch limit to the decompressed size: a small gzip of a huge body is 400', async () => {
    const huge = JSON.stringify({
      batch: [{ type: 'track', userId: 'u', event: 'x'.repeat(2 * LIMITS.batchBytes) }],
    });
    const compressed = gzipSync(huge);
    expect(compressed.length).toBeLessThan(LIMITS.batchBytes / 10);
    const res = await shared.h.post('/v1/batch', new Uint8Array(compressed), {
      ...auth,
      raw: true,
      headers: { 'content-encoding': 'gzip' },
    });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('GW_REQUEST_TOO_LARGE');
  });
});

describe('size limits', () => {
  it(`rejects a single event over ${LIMITS.eventBytes} bytes with 400 GW_EVENT_TOO_LARGE`, async () => {
    const res = await shared.h.post('/v1/track', eventOfSize(LIMITS.eventBytes + 1), auth);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('GW_EVENT_TOO_LARGE');
    expect(res.body.message).toContain(String(LIMITS.eventBytes));
  });

  it(`rejects a batch body over ${LIMITS.batchBytes} bytes with 400 GW_REQUEST_TOO_LARGE`, async () => {
    const event = eventOfSize(20_000);
    const batch = Array.from({ length: Math.ceil(LIMITS.batchBytes / 20_000) + 1 }, () => event);
    const res = await shared.h.post('/v1/batch', { batch }, auth);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('GW_REQUEST_TOO_LARGE');
    expect(res.body.message).toContain(String(LIMITS.batchBytes));
  });

  it(`rejects a batch of ${LIMITS.batchEvents + 1} events with 400 GW_BATCH_TOO_MANY_EVENTS`, async () => {
    const batch = Array.from({ length: LIMITS.batchEvents + 1 }, () => ({ type: 'identify', userId: 'u' }));
    const res = await shared.h.post('/v1/batch', { batch }, auth);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('GW_BATCH_TOO_MANY_EVENTS');
    expect(res.body.message).toContain('2501 events, at most 2500');
  });

  it('rejects one event over 32 KB inside a batch and accepts the others', async () => {
    const h2 = await GatewayHarness.start(shared.nats);
    try {
      const ok = { type: 'identify', userId: 'u', messageId: 'ok' };
      const big = { ...eventOfSize(LIMITS.eventBytes + 1), messageId: 'big' };
      const res = await h2.post('/v1/batch', { batch: [ok, big] }, auth);
      expect(res.status).toBe(200);
      expect(res.body.accepted).toBe(1);
      expect(res.body.rejected).toEqual([
        {
          index: 1,
          messageId: 'big',
          code: 'GW_EVENT_TOO_LARGE',
          message: expect.stringContaining('at most 32768'),
        },
      ]);
      expect((await h2.stored()).map((s) => s.event.messageId)).toEqual(['ok']);
    } finally {
      await h2.close();
    }
  });

  it('accepts an event of exactly 32 KB inside a batch', async () => {
    const h2 = await GatewayHarness.start(shared.nats);
    try {
      const event = eventOfSize(LIMITS.eventBytes);
      expect(Buffer.byteLength(JSON.stringify(event))).toBe(LIMITS.eventBytes);
      const res = await h2.post('/v1/batch', { batch: [event] }, auth);
      expect(res.status).toBe(200);
      expect(await h2.count()).toBe(1);
    } finally {
      await h2.close();
    }
  });

  it("counts the batch's context and integrations toward each event's 32 KB, as they are merged into it", async () => {
    const h2 = await GatewayHarness.start(shared.nats);
    try {
      const context = { pad: 'c'.repeat(20_000) };
      const small = { type: 'identify', userId: 'u', messageId: 'small' };
      const big = { ...eventOfSize(15_000), messageId: 'big' };
      const res = await h2.post('/v1/batch', { batch: [small, big], context }, auth);
      expect(res.status).toBe(200);
      expect(res.body.rejected).toEqual([
        {
          index: 1,
          messageId: 'big',
          code: 'GW_EVENT_TOO_LARGE',
          message: expect.stringContaining("with the batch's context and integrations"),
        },
      ]);
      const stored = await h2.stored();
      expect(stored.map((s) => [s.event.messageId, s.event.context])).toEqual([['small', context]]);
    } finally {
      await h2.close();
    }
  });

  it('does not fan a 500 KB batch out into one copy of its context per event', async () => {
    const batch = Array.from({ length: 2000 }, () => ({ type: 'identify', userId: 'u' }));
    const context = { pad: 'c'.repeat(LIMITS.batchBytes - JSON.stringify({ batch }).length - 100) };
    const res = await shared.h.post('/v1/batch', { batch, context }, auth);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('GW_BATCH_ALL_REJECTED');
    expect(res.body.rejected[0].code).toBe('GW_EVENT_TOO_LARGE');
  });

  it("refuses a batch whose events, each with the batch's context copied in, are too large to store", async () => {
    // The drill: ~197 KB sent, a 31 KB context in each of 2,500 events, ~78 MB to store.
    const batch = Array.from({ length: 2500 }, (_, i) => ({ type: 'identify', userId: `u${i}` }));
    const context = { pad: 'c'.repeat(31 * 1024) };
    const res = await shared.h.post('/v1/batch', { batch, context }, auth);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('GW_BATCH_STORED_TOO_LARGE');
    expect(res.body.message).toMatch(
      /over 4194304 bytes by event \d+ of 2500 \(31\d+ bytes of batch context/,
    );
  });

  it('stores a batch that stays within the stored-bytes limit, context and all', async () => {
    const h2 = await GatewayHarness.start(shared.nats, { gateway: { maxRequestStoredBytes: 200_000 } });
    try {
      const context = { pad: 'c'.repeat(4_000) };
      const batch = (n: number) =>
        Array.from({ length: n }, (_, i) => ({ type: 'identify', userId: `u${i}` }));
      // 40 × ~4.2 KB fits in 200 KB; 60 do not, though the body of either is under 5 KB.
      expect((await h2.post('/v1/batch', { batch: batch(40), context }, auth)).status).toBe(200);
      const over = await h2.post('/v1/batch', { batch: batch(60), context }, auth);
      expect(over.status).toBe(400);
      expect(over.body.code).toBe('GW_BATCH_STORED_TOO_LARGE');
      expect(await h2.count()).toBe(40);
    } finally {
      await h2.close();
    }
  });

  it('rejects an event nested too deeply to serialize with 400 GW_EVENT_TOO_DEEP', async () => {
    const depth = 15_000;
    const raw = `{"userId":"u","event":"E","properties":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const res = await shared.h.post('/v1/track', raw, { ...auth, raw: true });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('GW_EVENT_TOO_DEEP');
  });
});

describe('hostile values in error messages', () => {
  it('names a deeply nested "type" without serializing it (400, not 500)', async () => {
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const res = await shared.h.post('/v1/batch', `{"batch":[{"type":${deep},"userId":"u"}]}`, {
      ...auth,
      raw: true,
    });
    expect(res.status).toBe(400);
    expect(res.body.rejected[0]).toMatchObject({
      code: 'GW_EVENT_TYPE_INVALID',
      message: expect.stringContaining('got an array'),
    });
  });

  it('rejects a batch context nested too deeply to serialize with 400 GW_EVENT_TOO_DEEP', async () => {
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const raw = `{"batch":[{"type":"identify","userId":"u"}],"context":{"x":${deep}}}`;
    const res = await shared.h.post('/v1/batch', raw, { ...auth, raw: true });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('GW_EVENT_TOO_DEEP');
  });

  it('quotes at most 64 characters of a bad value', async () => {
    const res = await shared.h.post(
      '/v1/track',
      { userId: 'u', event: 'E', timestamp: 'x'.repeat(5000) },
      auth,
    );
    expect(res.status).toBe(400);
    expect(res.body.message).toBe(`a timestamp is not an ISO-8601 date: "timestamp" is "${'x'.repeat(64)}…"`);
  });
});

describe('event rules', () => {
  const cases: Array<[string, string, Record<string, unknown>, string]> = [
    ['no userId or anonymousId', '/v1/identify', { traits: {} }, 'GW_IDENTITY_MISSING'],
    [
      'empty userId and null anonymousId',
      '/v1/identify',
      { userId: '', anonymousId: null },
      'GW_IDENTITY_MISSING',
    ],
    ['track without event', '/v1/track', { userId: 'u' }, 'GW_TRACK_EVENT_MISSING'],
    ['track with an empty event', '/v1/track', { userId: 'u', event: '' }, 'GW_TRACK_EVENT_MISSING'],
    ['group without groupId', '/v1/group', { userId: 'u' }, 'GW_GROUP_ID_MISSING'],
    ['alias without previousId', '/v1/alias', { userId: 'u' }, 'GW_PREVIOUS_ID_MISSING'],
    ['userId that is an object', '/v1/identify', { userId: { id: 1 } }, 'GW_FIELD_INVALID'],
    [
      'properties that are an array',
      '/v1/track',
      { userId: 'u', event: 'E', properties: [1] },
      'GW_FIELD_INVALID',
    ],
    ['context that is a string', '/v1/page', { userId: 'u', context: 'web' }, 'GW_FIELD_INVALID'],
    ['a numeric event name', '/v1/track', { userId: 'u', event: 42 }, 'GW_FIELD_INVALID'],
    ['a page name that is a number', '/v1/page', { userId: 'u', name: 7 }, 'GW_FIELD_INVALID'],
    [
      'a timestamp that is not a date',
      '/v1/track',
      { userId: 'u', event: 'E', timestamp: 'yesterday' },
      'GW_TIMESTAMP_INVALID',
    ],
    [
      // Its skew correction against a sentAt of year -271821 would be past the last date JavaScript has.
      'a timestamp beyond year 9999',
      '/v1/track',
      { userId: 'u', event: 'E', timestamp: '+275760-09-13T00:00:00.000Z', sentAt: '2024-01-01T00:00:00Z' },
      'GW_TIMESTAMP_INVALID',
    ],
    [
      'a sentAt before year 0',
      '/v1/track',
      { userId: 'u', event: 'E', timestamp: '2024-01-01T00:00:00Z', sentAt: '-271821-04-20T00:00:00.000Z' },
      'GW_TIMESTAMP_INVALID',
    ],
    [
      'a numeric sentAt',
      '/v1/track',
      { userId: 'u', event: 'E', sentAt: 1700000000 },
      'GW_TIMESTAMP_INVALID',
    ],
    ['an empty messageId', '/v1/track', { userId: 'u', event: 'E', messageId: '' }, 'GW_MESSAGE_ID_INVALID'],
    [
      'a messageId with a newline',
      '/v1/track',
      { userId: 'u', event: 'E', messageId: 'a\nb' },
      'GW_MESSAGE_ID_INVALID',
    ],
    ['a numeric messageId', '/v1/track', { userId: 'u', event: 'E', messageId: 5 }, 'GW_MESSAGE_ID_INVALID'],
    // NATS trims header values: "m1 " would take "m1"'s Nats-Msg-Id and a later "m1" be dropped as resent.
    [
      'a messageId with a trailing space',
      '/v1/track',
      { userId: 'u', event: 'E', messageId: 'm1 ' },
      'GW_MESSAGE_ID_INVALID',
    ],
    [
      'a messageId with a leading no-break space',
      '/v1/track',
      { userId: 'u', event: 'E', messageId: '\u00a0m1' },
      'GW_MESSAGE_ID_INVALID',
    ],
    [
      'a 513-character messageId',
      '/v1/track',
      { userId: 'u', event: 'E', messageId: 'm'.repeat(513) },
      'GW_MESSAGE_ID_INVALID',
    ],
  ];
  for (const [what, path, body, code] of cases) {
    it(`rejects ${what} with 400 ${code}`, async () => {
      const res = await shared.h.post(path, body, auth);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ success: false, code });
      expect(res.body.message.length).toBeGreaterThan(10);
    });
  }

  it('names the offending field in the message', async () => {
    const res = await shared.h.post('/v1/track', { userId: 'u', event: 'E', traits: 'x' }, auth);
    expect(res.body.message).toBe('a field has the wrong type: "traits" must be an object');
  });
});

describe('batch envelope', () => {
  it.each([
    [{}, 'GW_BATCH_NOT_ARRAY'],
    [{ batch: { type: 'track' } }, 'GW_BATCH_NOT_ARRAY'],
    [{ batch: [] }, 'GW_BATCH_EMPTY'],
    [{ batch: [{ type: 'identify', userId: 'u' }], context: [1] }, 'GW_FIELD_INVALID'],
    [{ batch: [{ type: 'identify', userId: 'u' }], integrations: 'all' }, 'GW_FIELD_INVALID'],
    [{ batch: [{ type: 'identify', userId: 'u' }], sentAt: 'soon' }, 'GW_TIMESTAMP_INVALID'],
  ])('rejects %j with 400 %s', async (body, code) => {
    const res = await shared.h.post('/v1/batch', body, auth);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(code);
  });

  it('rejects a batch whose every event is invalid with 400 GW_BATCH_ALL_REJECTED listing each', async () => {
    const res = await shared.h.post('/v1/batch', { batch: [{ type: 'track', userId: 'u' }, 'nope'] }, auth);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      success: false,
      code: 'GW_BATCH_ALL_REJECTED',
      rejected: [
        { index: 0, code: 'GW_TRACK_EVENT_MISSING' },
        { index: 1, code: 'GW_EVENT_NOT_OBJECT' },
      ],
    });
  });
});

describe('batch partial rejects', () => {
  it('publishes the valid events and says which were rejected and why', async () => {
    const h2 = await GatewayHarness.start(shared.nats);
    try {
      const batch = [
        { type: 'track', userId: 'u', event: 'Good 1', messageId: 'g1' },
        { type: 'track', userId: 'u', messageId: 'no-name' },
        { type: 'launch', userId: 'u', messageId: 'bad-type' },
        { type: 'identify', messageId: 'anon' },
        { type: 'group', userId: 'u', groupId: 'g', messageId: 'g2' },
        { userId: 'u', event: 'untyped' },
      ];
      const res = await h2.post('/v1/batch', { batch }, auth);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        success: true,
        accepted: 2,
        rejected: [
          { index: 1, messageId: 'no-name', code: 'GW_TRACK_EVENT_MISSING', message: expect.any(String) },
          {
            index: 2,
            messageId: 'bad-type',
            code: 'GW_EVENT_TYPE_INVALID',
            message: expect.stringContaining('"launch"'),
          },
          { index: 3, messageId: 'anon', code: 'GW_IDENTITY_MISSING', message: expect.any(String) },
          { index: 5, code: 'GW_EVENT_TYPE_INVALID', message: expect.stringContaining('"type" is missing') },
        ],
      });
      expect((await h2.stored()).map((s) => s.event.messageId)).toEqual(['g1', 'g2']);
      expect(await h2.metric('dfn_gateway_rejects_total', { reason: 'GW_EVENT_TYPE_INVALID' })).toBe(2);
    } finally {
      await h2.close();
    }
  });
});

describe('compressed bodies', () => {
  it.each([
    ['gzip', gzipSync],
    ['deflate', deflateSync],
  ])('accepts a %s-encoded body', async (encoding, compress) => {
    const h2 = await GatewayHarness.start(shared.nats);
    try {
      const body = compress(JSON.stringify({ batch: [{ type: 'track', userId: 'u', event: 'Zipped' }] }));
      const res = await h2.post('/v1/batch', new Uint8Array(body), {
        ...auth,
        raw: true,
        headers: { 'content-encoding': encoding },
      });
      expect(res.status).toBe(200);
      expect((await h2.stored())[0]!.event.event).toBe('Zipped');
    } finally {
      await h2.close();
    }
  });

  it('accepts text/plain JSON, as analytics.js sends to avoid a CORS preflight', async () => {
    const h2 = await GatewayHarness.start(shared.nats);
    try {
      const res = await h2.post(
        '/v1/t',
        { userId: 'u', event: 'E', writeKey: WRITE_KEY },
        {
          headers: { 'content-type': 'text/plain' },
        },
      );
      expect(res.status).toBe(200);
      expect(await h2.count()).toBe(1);
    } finally {
      await h2.close();
    }
  });
});
