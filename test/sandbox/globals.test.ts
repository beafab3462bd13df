// The globals user code gets, as Segment's functions library uses them, and nothing of the host.

import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sandboxes } from '../helpers/sandbox.js';

const { load, logsOf } = sandboxes();

describe('globals', () => {
  it('exposes exactly the documented globals beyond V8 built-ins', async () => {
    const logs = await logsOf(`
      const names = ['fetch','Headers','Request','Response','URL','URLSearchParams','btoa','atob','TextEncoder',
        'TextDecoder','Buffer','_','crypto','console','setTimeout','clearTimeout','cache','EventNotSupported',
        'InvalidEventPayload','ValidationError','RetryError'];
      console.log(names.filter((n) => typeof globalThis[n] === 'undefined').join(',') || 'all present');
      console.log(['require','process','module','global','setImmediate','__dirname','ivm','_ivm'].filter((n) => typeof globalThis[n] !== 'undefined').join(',') || 'none');`);
    expect(logs).toEqual(['all present', 'none']);
  });

  it('Headers: case-insensitive, from an object, pairs or Headers, iterable', async () => {
    const logs = await logsOf(`
      const h = new Headers({ 'Content-Type': 'application/json', 'X-A': '1' });
      h.append('x-a', '2');
      h.set('Authorization', 'Bearer t');
      console.log(h.get('content-type'), h.get('X-A'), h.has('authorization'), [...h.keys()].join(','));
      const copy = new Headers(h); copy.delete('x-a');
      console.log(new Headers([['k', 'v']]).get('K'), copy.has('x-a'), h.has('x-a'));`);
    expect(logs).toEqual(['application/json 1, 2 true authorization,content-type,x-a', 'v false true']);
  });

  it('URL and URLSearchParams follow WHATWG semantics', async () => {
    const logs = await logsOf(`
      const u = new URL('/v1/track?x=1#frag', 'https://API.example.com:8443/base/');
      u.searchParams.append('q', 'a b&c');
      u.searchParams.set('x', '2');
      console.log(u.href);
      console.log(u.protocol, u.hostname, u.port, u.pathname, u.search, u.hash, u.origin);
      u.pathname = '/other path';
      console.log(u.toString(), JSON.stringify({ u }));
      const p = new URLSearchParams({ a: '1', b: "it's ~ok" });
      console.log(p.toString(), new URLSearchParams('?a=1&a=2&b=%20x+y').getAll('a').join('|'), new URLSearchParams('b=%20x+y').get('b'));
      let threw = false; try { new URL('not a url'); } catch (e) { threw = e instanceof TypeError; }
      console.log(threw, URL.canParse('https://x.y'), u instanceof URL);`);
    expect(logs).toEqual([
      'https://api.example.com:8443/v1/track?x=2&q=a+b%26c#frag',
      'https: api.example.com 8443 /v1/track ?x=2&q=a+b%26c #frag https://api.example.com:8443',
      `https://api.example.com:8443/other%20path?x=2&q=a+b%26c#frag {"u":"https://api.example.com:8443/other%20path?x=2&q=a+b%26c#frag"}`,
      'a=1&b=it%27s+%7Eok 1|2  x y',
      'true true true',
    ]);
  });

  it('btoa/atob, Buffer and TextEncoder/TextDecoder encode like Node', async () => {
    const logs = await logsOf(`
      console.log(btoa('user:pass'), atob('dXNlcjpwYXNz'));
      const b = Buffer.from('héllo ✓ 😀', 'utf8');
      console.log(b.length, b.toString('base64'), b.toString('hex'), Buffer.from(b.toString('hex'), 'hex').toString());
      console.log(Buffer.from('aGk/Pz4+', 'base64').toString(), Buffer.from('aGk_Pz4-', 'base64url').toString(), Buffer.isBuffer(b));
      console.log(Buffer.concat([Buffer.from('a'), Buffer.from('bc')]).toString(), Buffer.byteLength('✓'), JSON.stringify(Buffer.from('hi')));
      const enc = new TextEncoder().encode('✓ ok');
      console.log(enc.length, new TextDecoder().decode(enc));
      let threw = false; try { btoa('✓'); } catch { threw = true; }
      console.log(threw);`);
    const s = 'héllo ✓ 😀';
    expect(logs).toEqual([
      'dXNlcjpwYXNz user:pass',
      `${Buffer.byteLength(s)} ${Buffer.from(s).toString('base64')} ${Buffer.from(s).toString('hex')} ${s}`,
      'hi??>> hi??>> true',
      'abc 3 {"type":"Buffer","data":[104,105]}',
      '6 ✓ ok',
      'true',
    ]);
  });

  it('crypto hashes, HMACs and random values match Node', async () => {
    const logs = await logsOf(`
      console.log(crypto.createHash('md5').update('hello').digest('hex'));
      console.log(crypto.createHash('sha1').update('hel').update('lo').digest('base64'));
      console.log(crypto.createHash('sha256').update(Buffer.from('hello')).digest('hex'));
      console.log(crypto.createHash('sha512').update('hello').digest('hex').length);
      console.log(crypto.createHmac('sha256', 'key').update('hello').digest('hex'));
      console.log(/^[0-9a-f-]{36}$/.test(crypto.randomUUID()), crypto.randomBytes(16).length, crypto.randomUUID() !== crypto.randomUUID());
      let threw = false; try { crypto.createHash('nope'); } catch { threw = true; }
      console.log(threw);`);
    expect(logs).toEqual([
      createHash('md5').update('hello').digest('hex'),
      createHash('sha1').update('hello').digest('base64'),
      createHash('sha256').update('hello').digest('hex'),
      '128',
      createHmac('sha256', 'key').update('hello').digest('hex'),
      'true 16 true',
      'true',
    ]);
  });

  it('lodash is available as _', async () => {
    const logs = await logsOf(
      `console.log(_.isString('x'), _.isString(1), _.get({ a: { b: 2 } }, 'a.b'), _.chunk([1,2,3], 2).length, _.VERSION);`,
    );
    expect(logs).toEqual([`true false 2 2 ${(await import('lodash')).default.VERSION}`]);
  });

  it('setTimeout and clearTimeout', async () => {
    const logs = await logsOf(`
      const order = [];
      const cancelled = setTimeout(() => order.push('cancelled'), 5);
      clearTimeout(cancelled);
      await new Promise((resolve) => setTimeout((a, b) => { order.push(a + b); resolve(); }, 10, 'x', 'y'));
      console.log(order.join(','));`);
    expect(logs).toEqual(['xy']);
  });
});

describe('cache', () => {
  it('loads once within the TTL, again after it expires, and shares concurrent loads', async () => {
    const sb = await load(`
      let loads = 0;
      async function onTrack(event) {
        const v = await cache.load('token', event.properties.ttl, async () => { loads++; await new Promise((r) => setTimeout(r, 5)); return 'v' + loads; });
        console.log(v, loads);
      }`);
    const first = await sb.invoke([
      { type: 'track', properties: { ttl: 60_000 } },
      { type: 'track', properties: { ttl: 60_000 } },
    ]);
    expect(first.map((r) => r.logs)).toEqual([['v1 1'], ['v1 1']]);
    const [cached] = await sb.invoke([{ type: 'track', properties: { ttl: 60_000 } }]);
    expect(cached!.logs).toEqual(['v1 1']);
  });

  it('expires entries after their TTL and forgets deleted keys', async () => {
    const sb = await load(`
      let loads = 0;
      async function onTrack(event) {
        if (event.properties.del) cache.delete('k');
        const v = await cache.load('k', 20, async () => ++loads);
        if (event.properties.wait) await new Promise((r) => setTimeout(r, 40));
        console.log(v);
      }`);
    await sb.invoke([{ type: 'track', properties: { wait: true } }]);
    const [afterTtl] = await sb.invoke([{ type: 'track', properties: {} }]);
    const [afterDelete] = await sb.invoke([{ type: 'track', properties: { del: true } }]);
    expect(afterTtl!.logs).toEqual(['2']);
    expect(afterDelete!.logs).toEqual(['3']);
  });

  it('is bounded in entries (least recently used goes first) and bytes', async () => {
    const sb = await load(
      `
      const loads = {};
      async function onTrack(event) {
        const { keys, size } = event.properties;
        for (const k of keys) await cache.load(k, 60000, async () => { loads[k] = (loads[k] || 0) + 1; return 'x'.repeat(size); });
        console.log(JSON.stringify(loads));
      }`,
      { limits: { cacheEntries: 3, cacheBytes: 10_000 } },
    );
    await sb.invoke([{ type: 'track', properties: { keys: ['a', 'b', 'c', 'a', 'd', 'a', 'b'], size: 1 } }]);
    const [entries] = await sb.invoke([{ type: 'track', properties: { keys: [], size: 1 } }]);
    // d evicted b (least recently used); a stayed cached; b was loaded again.
    expect(JSON.parse(entries!.logs[0]!)).toEqual({ a: 1, b: 2, c: 1, d: 1 });
    const [big] = await sb.invoke([{ type: 'track', properties: { keys: ['huge', 'huge'], size: 20_000 } }]);
    expect(JSON.parse(big!.logs[0]!).huge).toBe(2); // larger than the byte bound: never kept
  });
});

describe('console capture', () => {
  it('captures every level and formats values', async () => {
    const logs = await logsOf(`
      console.log('a', 1, { b: [2] }, null, undefined);
      console.info('info'); console.warn('careful'); console.error(new Error('bad'));`);
    expect(logs.slice(0, 3)).toEqual(['a 1 {"b":[2]} null undefined', 'info: info', 'warn: careful']);
    expect(logs[3]).toMatch(/^error: Error: bad/);
  });

  it('caps output at 4 KB per invocation and says so', async () => {
    const sb = await load(
      `async function onTrack() { for (let i = 0; i < 1000; i++) console.log('line ' + i + ' ' + 'x'.repeat(40)); }`,
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    const bytes = report!.logs.slice(0, -1).reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    expect(bytes).toBeLessThanOrEqual(4096);
    expect(bytes).toBeGreaterThan(4000);
    expect(report!.logs.at(-1)).toMatch(/capped at 4096 bytes/);
    const [next] = await sb.invoke([{ type: 'track' }]);
    expect(next!.logs[0]).toMatch(/^line 0 /); // the cap is per invocation
  });

  it('redacts sensitive setting values from logs and error messages', async () => {
    const sb = await load(
      `async function onTrack(e, s) { console.log('key is', s.apiKey); throw new Error('rejected ' + s.apiKey); }`,
      {
        settings: { apiKey: 'sk_live_123456' },
        sensitiveValues: ['sk_live_123456'],
      },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual(['key is [redacted]']);
    expect(report!.outcome).toMatchObject({ message: 'rejected [redacted]' });
  });
});
