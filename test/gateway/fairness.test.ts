// The in-flight budget over real HTTP and NATS: a heavy client alone may fill it; once it does, other
// write keys still get 200 while it gets 429; attackers with many keys, connections, addresses or gzip
// bodies stay within it.

import { gzipSync } from 'node:zlib';
import { StorageType, type Subscription } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { type GatewayHarness, gatewayFixture, type HarnessOptions, type Reply } from './harness.js';
import { answerOrHeld, type RawResponse, type SlowRequest, slowRequest } from './slow-client.js';

const gw = gatewayFixture();

const BUDGET = 100_000;
const KEYS = {
  heavy_key: 'heavy',
  light_key: 'light',
  public_key: 'public',
  a1_key: 'a1',
  a2_key: 'a2',
  a3_key: 'a3',
};
/** Sources whose events JetStream stores; the others reach a subscriber that never acknowledges. */
const STORED = ['light', 'public'];
const HELD = ['heavy', 'a1', 'a2', 'a3'];

const silent: Subscription[] = [];
const open: SlowRequest[] = [];
afterEach(() => {
  for (const s of silent.splice(0)) s.unsubscribe();
  for (const s of open.splice(0)) s.socket.destroy();
});

/**
 * A gateway with a 100 KB budget whose "held" sources' events are never acknowledged (a stand-in for
 * a JetStream that does not answer them), so their requests stay in flight for as long as a test needs.
 */
async function start(gateway: HarnessOptions['gateway'] = {}): Promise<GatewayHarness> {
  const h = await gw.start({
    keys: KEYS,
    streams: false,
    gateway: {
      maxInFlightBytes: BUDGET,
      publishTimeoutMs: 60_000,
      requestTimeoutMs: 60_000,
      shutdownGraceMs: 100,
      ...gateway,
    },
  });
  const jsm = await h.nc.jetstreamManager();
  await jsm.streams.add({
    name: h.stream,
    subjects: STORED.map((s) => `${h.prefix}.events.${s}.>`),
    storage: StorageType.Memory,
  });
  for (const source of HELD) silent.push(h.nc.subscribe(`${h.prefix}.events.${source}.>`));
  await h.nc.flush();
  return h;
}

const heldEvents = () => silent.reduce((n, s) => n + s.getReceived(), 0);

const inFlightBytes = (h: GatewayHarness) => h.metric('dfn_gateway_in_flight_bytes');

type SlowOptions = NonNullable<Parameters<typeof slowRequest>[1]>;

/** Opens a request that sends its body (by default `bytes` of it) a byte every half second. */
function trickle(h: GatewayHarness, bytes: number, writeKey: string, extra: SlowOptions = {}): SlowRequest {
  const s = slowRequest(h.url, {
    body: 'x'.repeat(bytes),
    writeKey,
    bytesPerTick: 1,
    intervalMs: 500,
    ...extra,
  });
  open.push(s);
  return s;
}

/**
 * Opens trickling requests, each taking `reserved` bytes of the budget, until one is refused (answered
 * at its headers); returns that answer.
 */
async function trickleUntilRefused(
  h: GatewayHarness,
  reserved: number,
  writeKey: string,
  extra: SlowOptions = {},
): Promise<RawResponse> {
  for (let i = 0; i < 50; i++) {
    const before = await inFlightBytes(h);
    const answer = await answerOrHeld(
      trickle(h, reserved, writeKey, extra).response,
      async () => (await inFlightBytes(h)) >= before + reserved,
    );
    if (answer) return answer;
  }
  throw new Error('never refused');
}

/** A batch of 5 events of ~800 bytes: ~9 KB of the budget (body and stored events) while in flight. */
const heavyBatch = (tag: string) => ({
  batch: Array.from({ length: 5 }, (_, i) => ({
    type: 'track',
    userId: 'u',
    event: 'Heavy',
    messageId: `${tag}-${i}`,
    properties: { pad: 'x'.repeat(800) },
  })),
});

/**
 * Posts heavy batches with `writeKey`, one after the other, each left in flight, until one is refused;
 * returns how many are in flight and the refusal.
 */
async function fillBudget(
  h: GatewayHarness,
  writeKey: string,
  tag: string,
): Promise<{ held: number; refused: Reply }> {
  for (let i = 0; i < 100; i++) {
    const before = heldEvents();
    const answer = h.post('/v1/batch', heavyBatch(`${tag}-${i}`), { writeKey });
    const refused = await answerOrHeld(answer, () => heldEvents() >= before + 5);
    if (refused) return { held: i, refused };
  }
  throw new Error('the budget never filled');
}

function expectThrottled(res: Reply): void {
  expect(res.status).toBe(429);
  expect(res.headers.get('retry-after')).toBe('1');
  expect(res.body.code).toBe('GW_THROTTLED');
}

const track = (messageId: string) => ({ userId: 'u', event: 'Light', messageId });

describe('one heavy client', () => {
  it('alone may fill the whole budget; beyond it, it gets 429 GW_THROTTLED with Retry-After', async () => {
    const h = await start();
    const { held, refused } = await fillBudget(h, 'heavy_key', 'alone');
    expectThrottled(refused);
    // Everything it holds is its own: work-conserving, nobody else wanted any.
    const inFlight = await h.metric('dfn_gateway_in_flight_bytes');
    expect(held).toBeGreaterThan(5);
    expect(inFlight).toBeGreaterThan(BUDGET * 0.85);
    expect(inFlight).toBeLessThanOrEqual(BUDGET);
    expect(await h.metric('dfn_gateway_refusals_total', { reason: 'GW_THROTTLED' })).toBe(1);
  });

  it("while it holds the budget, another write key's small requests get 200 and it keeps getting 429", async () => {
    const h = await start();
    await fillBudget(h, 'heavy_key', 'hog');
    for (let i = 0; i < 20; i++) {
      const light = await h.post('/v1/track', track(`light-${i}`), { writeKey: 'light_key' });
      expect(light.status).toBe(200);
      expectThrottled(await h.post('/v1/batch', heavyBatch(`hog-more-${i}`), { writeKey: 'heavy_key' }));
    }
    const stored = await h.stored();
    expect(stored.map((s) => s.event.messageId)).toEqual(Array.from({ length: 20 }, (_, i) => `light-${i}`));
  });

  it("while it holds the budget, another key's requests as large as its own, larger than the room left, get 200", async () => {
    const h = await start();
    const { held } = await fillBudget(h, 'heavy_key', 'hog');
    const inFlight = await inFlightBytes(h);
    // Less room is left than one such request holds (body and events): only the fair share beyond
    // the budget lets it in.
    expect(BUDGET - inFlight).toBeLessThan(inFlight / held);
    for (let i = 0; i < 5; i++) {
      const res = await h.post('/v1/batch', heavyBatch(`light-${i}`), { writeKey: 'light_key' });
      expect(res.status).toBe(200);
      expect(res.body.accepted).toBe(5);
    }
    expect(await h.count()).toBe(25);
  });
});

describe('what an attacker tries next', () => {
  it('several write keys filling the budget together do not keep out a key they do not have', async () => {
    const h = await start();
    // Each key in turn takes what room is left, then what its share lets it take beyond.
    for (const key of ['a1_key', 'a2_key', 'a3_key']) await fillBudget(h, key, key);
    expect(await inFlightBytes(h)).toBeLessThanOrEqual(2 * BUDGET);
    for (let i = 0; i < 10; i++) {
      expect((await h.post('/v1/track', track(`through-${i}`), { writeKey: 'light_key' })).status).toBe(200);
    }
    expectThrottled(await h.post('/v1/batch', heavyBatch('a1-again'), { writeKey: 'a1_key' }));
  });

  it('never lets what is held pass twice the budget: there, even a client within its share gets 503 GW_OVERLOADED', async () => {
    const h = await start();
    for (const key of ['heavy_key', 'a1_key', 'a2_key', 'a3_key']) await fillBudget(h, key, key);
    const held = await inFlightBytes(h);
    expect(held).toBeLessThanOrEqual(2 * BUDGET);
    // Five keys: the light key's share is 20 KB; a body that would cross the ceiling is within it.
    const over = 2 * BUDGET - held + 1;
    expect(over).toBeLessThan(BUDGET / 5);
    const res = await trickle(h, over, 'light_key').response;
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body.code).toBe('GW_OVERLOADED');
    expect(await h.metric('dfn_gateway_refusals_total', { reason: 'GW_OVERLOADED' })).toBe(1);
  });

  it('many trickling connections hold their bodies in the budget, are refused at their headers when it is full, and do not keep other keys out', async () => {
    const h = await start();
    // Each declares a 20 KB body and sends it a byte at a time, until the budget is full.
    const refused = await trickleUntilRefused(h, 20_000, 'heavy_key');
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('GW_THROTTLED');
    // Answered before the body was read: the refusal closes the connection.
    expect(refused.headers.connection).toBe('close');
    expect(refused.sent).toBeLessThan(refused.total);
    expect(await inFlightBytes(h)).toBeLessThanOrEqual(BUDGET);
    expect((await h.post('/v1/track', track('past-the-trickles'), { writeKey: 'light_key' })).status).toBe(
      200,
    );
  });

  it('a gzip body holds the route limit in the budget while it is read, whatever it inflates to', async () => {
    const h = await start({ maxInFlightBytes: 1_100_000 });
    // A bomb: 5 MB of spaces in a few KB. Two fill the budget (500 KB each); the third waits its turn.
    const bomb = gzipSync(Buffer.concat([Buffer.from('{"batch":['), Buffer.alloc(5_000_000, ' ')]));
    const refused = await trickleUntilRefused(h, 500 * 1024, 'heavy_key', {
      body: bomb,
      headers: { 'content-encoding': 'gzip' },
    });
    expect(refused.status).toBe(429);
    expect(await inFlightBytes(h)).toBe(2 * 500 * 1024);
    expect((await h.post('/v1/track', track('beside-the-bombs'), { writeKey: 'light_key' })).status).toBe(
      200,
    );
    // Sent in full, a bomb is cut off at the limit, not inflated to the end.
    const whole = await h.post('/v1/batch', bomb, {
      writeKey: 'light_key',
      raw: true,
      headers: { 'content-encoding': 'gzip' },
    });
    expect(whole.status).toBe(400);
    expect(whole.body.code).toBe('GW_REQUEST_TOO_LARGE');
  });

  it("one public write key: an address that took the key's whole share is throttled while a browser on another address waits, which then gets in", async () => {
    const h = await start();
    // The attacker holds the budget with slow bodies from 127.0.0.2; the browser posts from 127.0.0.3.
    const attack = { localAddress: '127.0.0.2' };
    expect((await trickleUntilRefused(h, 20_000, 'public_key', attack)).status).toBe(429);
    const browser = (tag: string) =>
      slowRequest(h.url, {
        path: '/v1/track',
        body: JSON.stringify(track(tag)),
        writeKey: 'public_key',
        localAddress: '127.0.0.3',
        burst: 1_000,
        headers: { connection: 'close' },
      }).response;
    // The key as a whole holds its share (all of it): the browser is refused once, and now waits...
    expect((await browser('first')).status).toBe(429);
    // ...so room one of the attacker's requests frees is not the attacker's to retake.
    open[0]!.socket.destroy();
    await waitFor('the room to be freed', async () => (await inFlightBytes(h)) <= BUDGET - 20_000);
    expect((await trickle(h, 20_000, 'public_key', attack).response).status).toBe(429);
    const resent = await browser('first');
    expect(resent.status).toBe(200);
    expect((await h.stored()).map((s) => s.event.messageId)).toEqual(['first']);
  });

  it('counts X-Forwarded-For addresses as clients only behind a trusted proxy', async () => {
    for (const trusted of [false, true]) {
      const h = await start(trusted ? { trustProxy: ['127.0.0.1'] } : {});
      for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) {
        trickle(h, 1000, 'public_key', { headers: { 'x-forwarded-for': ip } });
      }
      await waitFor('three slow requests open', async () => (await inFlightBytes(h)) === 3000);
      expect(await h.metric('dfn_gateway_in_flight_clients')).toBe(trusted ? 3 : 1);
      for (const s of open.splice(0)) s.socket.destroy();
    }
  });
});
