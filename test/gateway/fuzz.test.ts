// A bounded, seeded fuzz loop of malformed requests: every one gets a 4xx (never a 5xx or a hang),
// nothing reaches the stream, and the gateway still serves a valid request afterwards.

import { Agent, request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../../api/events.js';
import { basic, sharedGateway, WRITE_KEY } from './harness.js';

const ITERATIONS = 400;
const SEED = 0x5e9e17;

/** mulberry32: small, seedable, good enough to vary inputs reproducibly. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const word = (max = 8) =>
    Array.from({ length: 1 + int(max) }, () =>
      pick('abcdefghijklmnopqrstuvwxyzABC0123456789_'.split('')),
    ).join('');
  return { next, int, pick, word };
}
type Rng = ReturnType<typeof prng>;

interface Case {
  kind: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

const SINGLE_PATHS = ['/v1/identify', '/v1/track', '/v1/page', '/v1/screen', '/v1/group', '/v1/alias'];
const json = { 'content-type': 'application/json', authorization: basic(WRITE_KEY) };

function validEvent(r: Rng, type: string): Record<string, unknown> {
  const e: Record<string, unknown> = { type, userId: r.word(), messageId: `fz-${r.word(12)}` };
  if (type === 'track') e.event = r.word();
  if (type === 'group') e.groupId = r.word();
  if (type === 'alias') e.previousId = r.word();
  if (r.next() < 0.5) e.properties = { [r.word()]: r.word(), n: r.int(1000) };
  if (r.next() < 0.3) e.context = { ip: '10.0.0.1', [r.word()]: [r.int(9)] };
  return e;
}

function randomJunk(r: Rng, depth = 0): unknown {
  const k = r.int(depth > 3 ? 4 : 6);
  if (k === 0) return r.word();
  if (k === 1) return r.next() * 1e6 - 5e5;
  if (k === 2) return r.pick([true, false, null]);
  if (k === 3) return '';
  if (k === 4) return Array.from({ length: r.int(4) }, () => randomJunk(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < r.int(5); i++) o[r.word()] = randomJunk(r, depth + 1);
  return o;
}

function notADate(r: Rng): string {
  for (;;) {
    const s = `${r.pick(['zz', 'soon', 'T', '--'])}${r.word(4)}`;
    if (Number.isNaN(Date.parse(s))) return s;
  }
}

/** One mutation that makes any event invalid, by construction. */
function breakEvent(r: Rng, e: Record<string, unknown>, inBatch: boolean): unknown {
  const mutations: Array<() => unknown> = [
    () => {
      delete e.userId;
      delete e.anonymousId;
      return e;
    },
    () => ({ ...e, userId: r.pick([{ id: 1 }, [1], true]) }),
    () => ({ ...e, properties: r.pick([[1, 2], 'props', 7]) }),
    () => ({ ...e, context: r.pick(['ctx', [1], 3]) }),
    () => ({ ...e, timestamp: notADate(r) }),
    () => ({ ...e, messageId: r.pick(['', 12, 'a\nb', { id: 1 }]) }),
    () => r.pick([42, 'event', null, [e]]),
  ];
  if (e.type === 'track') mutations.push(() => ({ ...e, event: r.pick(['', undefined]) }));
  if (e.type === 'group') mutations.push(() => ({ ...e, groupId: undefined }));
  if (e.type === 'alias') mutations.push(() => ({ ...e, previousId: undefined }));
  if (inBatch) {
    mutations.push(() => {
      let type = r.word();
      while ((EVENT_TYPES as readonly string[]).includes(type)) type = r.word();
      return { ...e, type };
    });
    mutations.push(() => {
      const { type: _drop, ...rest } = e;
      return rest;
    });
  }
  return r.pick(mutations)();
}

function generate(r: Rng): Case {
  const type = r.pick(EVENT_TYPES.filter((t) => t !== 'delete'));
  const singlePath = SINGLE_PATHS[EVENT_TYPES.indexOf(type)]!;
  const valid = JSON.stringify(validEvent(r, type));
  switch (r.int(12)) {
    case 0: {
      const bytes = Buffer.from(Array.from({ length: 1 + r.int(200) }, () => r.int(256)));
      bytes[0] = r.pick([0x23, 0x40, 0x21, 0x3b, 0x7e, 0x00, 0xff]);
      return { kind: 'garbage', path: r.pick(['/v1/batch', singlePath]), headers: json, body: bytes };
    }
    case 1: {
      const text = JSON.stringify({ batch: [validEvent(r, type), validEvent(r, type)] });
      return {
        kind: 'truncated',
        path: '/v1/batch',
        headers: json,
        body: Buffer.from(text.slice(0, r.int(text.length))),
      };
    }
    case 2: {
      const value = r.pick([[1, 2], 'str', 3.5, null, true, [{ type: 'track' }]]);
      return {
        kind: 'not-object',
        path: r.pick(['/v1/batch', singlePath]),
        headers: json,
        body: Buffer.from(JSON.stringify(value)),
      };
    }
    case 3: {
      const batch = Array.from({ length: 1 + r.int(20) }, () => {
        const t = r.pick(EVENT_TYPES);
        const e = validEvent(r, t);
        if (r.next() < 0.3) e[r.word()] = randomJunk(r);
        return breakEvent(r, e, true);
      });
      return {
        kind: 'broken-batch',
        path: r.pick(['/v1/batch', '/v1/import']),
        headers: json,
        body: Buffer.from(JSON.stringify({ batch })),
      };
    }
    case 4: {
      const broken = breakEvent(r, validEvent(r, type), false);
      return {
        kind: 'broken-event',
        path: singlePath,
        headers: json,
        body: Buffer.from(JSON.stringify(broken) ?? 'null'),
      };
    }
    case 5: {
      const contentType = r.pick([
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/xml',
        'image/png',
        'text/html',
      ]);
      return {
        kind: 'content-type',
        path: singlePath,
        headers: { ...json, 'content-type': contentType },
        body: Buffer.from(valid),
      };
    }
    case 6: {
      const authorization = r.pick([basic(r.word()), 'Bearer x', 'Basic', 'Basic !!!', basic(''), undefined]);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (authorization !== undefined) headers.authorization = authorization;
      return { kind: 'auth', path: singlePath, headers, body: Buffer.from(valid) };
    }
    case 7: {
      const big = { ...JSON.parse(valid), properties: { pad: 'x'.repeat(33 * 1024 + r.int(10_000)) } };
      return { kind: 'oversize', path: singlePath, headers: json, body: Buffer.from(JSON.stringify(big)) };
    }
    case 8: {
      const bytes = Buffer.from([0x1f, 0x8b, ...Array.from({ length: r.int(64) }, () => r.int(256))]);
      return {
        kind: 'bad-gzip',
        path: singlePath,
        headers: { ...json, 'content-encoding': 'gzip' },
        body: bytes,
      };
    }
    case 9: {
      return {
        kind: 'no-route',
        path: `/v1/${r.word()}x/${r.word()}`,
        headers: json,
        body: Buffer.from(valid),
      };
    }
    case 10: {
      // Nested far deeper than JSON.stringify can follow, in a field where an array is invalid anyway.
      const depth = 5_000 + r.int(30_000);
      const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
      const field = r.pick(['type', 'userId', 'timestamp', 'properties', 'messageId']);
      const event = JSON.stringify(validEvent(r, type)).slice(1, -1);
      const body = `{"batch":[{${field === 'type' ? '' : `${event},`}"${field}":${deep}}]}`;
      return { kind: 'deep', path: '/v1/batch', headers: json, body: Buffer.from(body) };
    }
    default: {
      const envelope = r.pick([
        { batch: {} },
        { batch: [] },
        { batch: 'x' },
        { batch: null },
        { events: [JSON.parse(valid)] },
      ]);
      return {
        kind: 'envelope',
        path: '/v1/batch',
        headers: json,
        body: Buffer.from(JSON.stringify(envelope)),
      };
    }
  }
}

function send(url: string, agent: Agent, c: Case): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${c.path}`,
      {
        method: 'POST',
        agent,
        headers: { ...c.headers, 'content-length': String(c.body.length) },
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer to ${c.kind} within 10 s`)));
    req.on('error', reject);
    req.end(c.body);
  });
}

describe('fuzz', () => {
  const shared = sharedGateway();

  it(`answers ${ITERATIONS} malformed requests with 4xx only, publishes nothing, and stays up`, async () => {
    const r = prng(SEED);
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const unexpected: string[] = [];
    const kinds = new Map<string, number>();
    try {
      for (let i = 0; i < ITERATIONS; i++) {
        const c = generate(r);
        kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
        const status = await send(shared.h.url, agent, c);
        if (status < 400 || status >= 500)
          unexpected.push(`#${i} ${c.kind} ${c.path} → ${status}: ${c.body.toString().slice(0, 200)}`);
      }
    } finally {
      agent.destroy();
    }
    expect(unexpected).toEqual([]);
    // Every category was exercised, so the loop cannot silently degenerate to one kind of input.
    expect(kinds.size).toBe(12);
    expect(await shared.h.count()).toBe(0);
    expect((await shared.h.get('/healthz')).status).toBe(200);
    const ok = await shared.h.post(
      '/v1/track',
      { userId: 'u', event: 'After the storm' },
      { writeKey: WRITE_KEY },
    );
    expect(ok.status).toBe(200);
    expect(await shared.h.count()).toBe(1);
  });
});
