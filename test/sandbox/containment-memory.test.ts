// Memory means memory: what a function makes the host allocate is bounded and every way to run out
// becomes an error in user code or a rebuilt isolate, never a host abort (each case is a real function).

import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOUNDS } from '../../sandbox/bounds.js';
import { expectBenignDelivered, hostileSource, rssMb } from '../helpers/containment.js';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();
const FIVE_MIB = 5 * 1024 * 1024;
let server: Server;
let url = '';

beforeAll(async () => {
  const big = Buffer.alloc(FIVE_MIB, 0x61);
  server = createServer((req, res) => {
    if (req.url === '/big') res.end(big);
    else res.end('{"ok":true,"text":"h\u00e9llo \u20ac"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** Fills the isolate's ArrayBuffer budget, as far as allocation lets it. */
const FILL_ARRAY_BUFFERS = `
  const hoard = (globalThis.hoard = []);
  for (let size = 8 << 20; size >= 4096; size >>= 1) {
    try { for (;;) hoard.push(new ArrayBuffer(size)); } catch {}
  }`;

const options = { allowPrivateNetwork: true, limits: { timeoutMs: 10_000 } };

describe('a fetch body when the isolate has no room left', () => {
  // ArrayBuffers count toward the isolate's memory limit, so the fill leaves it within 4 KB of the limit:
  // whether the next few kilobytes (the response text, the log lines, the dispatcher's output) still fit
  // is a matter of bytes. Both ends are contained: the text arrives and its bytes are allocated or a
  // RangeError user code catches, or the isolate runs out of memory and is rebuilt. Never a host abort.
  it('a spent ArrayBuffer budget, then a successful fetch: the text arrives and its bytes are a RangeError user code catches, or the isolate is rebuilt', async () => {
    const before = rssMb();
    const sb = await load(
      hostileSource(`${FILL_ARRAY_BUFFERS}
        const res = await fetch(settings.url + '/small');
        console.log(res.status, await res.clone().text());
        try { await res.arrayBuffer(); console.log('allocated'); }
        catch (e) { console.log('caught', e.name); }
        globalThis.hoard = undefined;`),
      { ...options, settings: { url } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    if (report!.outcome.outcome === 'success') {
      expect(report!.logs[0]).toBe('200 {"ok":true,"text":"h\u00e9llo \u20ac"}');
      expect(report!.logs[1]).toMatch(/^(caught RangeError|allocated)$/);
    } else {
      expect(report!.outcome).toEqual({
        outcome: 'retry',
        errorType: 'Timeout',
        message: 'the function ran out of memory (limit 128 MiB); its isolate was rebuilt',
      });
    }
    await expectBenignDelivered(sb);
    expect(rssMb() - before).toBeLessThan(400);
  });

  it('40 concurrent 5 MiB fetches over a spent budget: the host survives, the isolate is rebuilt or the function catches', async () => {
    const before = rssMb();
    const sb = await load(
      hostileSource(`${FILL_ARRAY_BUFFERS}
        const results = await Promise.allSettled(
          Array.from({ length: 40 }, () => fetch(settings.url + '/big').then((r) => r.arrayBuffer())),
        );
        console.log(results.filter((r) => r.status === 'rejected').length);`),
      { ...options, settings: { url } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    if (report!.outcome.outcome === 'success') expect(Number(report!.logs[0])).toBeGreaterThan(0);
    else
      expect(report!.outcome).toMatchObject({
        errorType: 'Timeout',
        message: expect.stringContaining('memory'),
      });
    await expectBenignDelivered(sb);
    expect(rssMb() - before).toBeLessThan(600);
  });

  it('40 concurrent 5 MiB fetches: response bytes the host holds for one function are capped, the rest fail in user code', {
    timeout: 120_000,
  }, async () => {
    const sb = await load(
      hostileSource(`
        const results = await Promise.allSettled(
          Array.from({ length: 40 }, () => fetch(settings.url + '/big').then((r) => r.text().then((t) => t.length))),
        );
        const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason.name + ' ' + r.reason.type);
        console.log(results.filter((r) => r.status === 'fulfilled' && r.value === ${FIVE_MIB}).length, failures.length, [...new Set(failures)].join());`),
      { ...options, settings: { url }, limits: { timeoutMs: 60_000, fetchTimeoutMs: 60_000, memoryMb: 256 } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    if (report!.outcome.outcome === 'success') {
      const [ok, failed, kinds] = report!.logs[0]!.split(' ');
      expect(Number(ok) + Number(failed)).toBe(40);
      expect(Number(ok)).toBeGreaterThan(0);
      if (Number(failed) > 0) expect(kinds).toBe('FetchError');
    } else {
      expect(report!.outcome).toMatchObject({
        errorType: 'Timeout',
        message: expect.stringContaining('memory'),
      });
    }
    expect(report!.requests.filter((t) => t.error?.includes('responses in flight')).length).toBe(
      report!.requests.filter((t) => t.status === 0).length,
    );
    await expectBenignDelivered(sb);
  });
});

describe('WebAssembly', () => {
  it('is absent, however the global object is reached', async () => {
    const sb = await load(
      hostileSource(`
        console.log(typeof WebAssembly, typeof globalThis.WebAssembly, typeof Function('return this')().WebAssembly);
        console.log(Object.getOwnPropertyNames(globalThis).includes('WebAssembly'));`),
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual(['undefined undefined undefined', 'false']);
    await expectBenignDelivered(sb);
  });
});

describe('host allocations on behalf of user code', () => {
  it('crypto.getRandomValues: Web Crypto’s 65,536-byte limit is a QuotaExceededError, a fake view a TypeError', async () => {
    const before = rssMb();
    const sb = await load(
      hostileSource(`
        const tryIt = (f) => { try { const v = f(); return 'ok ' + v.byteLength; } catch (e) { return e.name; } };
        console.log(tryIt(() => crypto.getRandomValues({ byteLength: 1e9, buffer: new ArrayBuffer(8), byteOffset: 0 })));
        console.log(tryIt(() => crypto.getRandomValues(new Uint8Array(65537))));
        console.log(tryIt(() => crypto.getRandomValues(new Uint32Array(16384))));
        console.log(tryIt(() => crypto.getRandomValues(new Float64Array(4))));
        const lying = new Uint8Array(4); Object.defineProperty(lying, 'byteLength', { value: 1e9 });
        console.log(tryIt(() => crypto.getRandomValues(lying)));
        console.log(tryIt(() => crypto.randomBytes(1e9)), tryIt(() => crypto.randomBytes(${BOUNDS.randomBytes})));`),
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual([
      'TypeError',
      'QuotaExceededError',
      'ok 65536',
      'TypeError',
      'ok 1000000000',
      `RangeError ok ${BOUNDS.randomBytes}`,
    ]);
    expect(rssMb() - before).toBeLessThan(200);
    await expectBenignDelivered(sb);
  });

  it('hashing is bounded per update (the host streams it); digests are exact copies', async () => {
    const sb = await load(
      hostileSource(`
        const chunk = Buffer.alloc(4 << 20, 1);
        const h = crypto.createHash('sha256');
        let fed = 0;
        for (let i = 0; i < 6; i++) { h.update(chunk); fed++; }
        try { h.update(Buffer.alloc(${BOUNDS.cryptoInputBytes} + 1)); } catch (e) { console.log(e.name, fed, h.digest('hex').length); }
        const d = crypto.createHash('md5').update('abc').digest();
        console.log(d.length, d.buffer.byteLength, d.toString('hex'));`),
      { limits: { memoryMb: 128, timeoutMs: 10_000 } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual(['RangeError 6 64', '16 16 900150983cd24fb0d6963f7d28e17f72']);
    await expectBenignDelivered(sb);
  });

  it('URL parsing refuses inputs past its bound instead of copying them to the host', async () => {
    const sb = await load(
      hostileSource(`
        const long = 'https://example.com/' + 'a'.repeat(1 << 20);
        for (let i = 0; i < 200; i++) { try { new URL(long); } catch (e) { if (i === 0) console.log(e.name, e.message); } }
        console.log(new URL('https://example.com/' + 'a'.repeat(1000)).pathname.length);`),
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual([
      `TypeError Invalid URL: longer than ${BOUNDS.urlChars} characters`,
      '1001',
    ]);
    await expectBenignDelivered(sb);
  });
});
