// crypto and zlib as an attacker uses them: forged and stale handles, exhausting the handle table, huge
// inputs, work parameters that would park the host thread, decompression bombs. The host survives, stays
// small, answers each with an error, and the next benign event is delivered.

import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BOUNDS } from '../../sandbox/bounds.js';
import { IsolateCrypto } from '../../sandbox/host-crypto.js';
import { expectBenignDelivered, hostileSource, rssMb } from '../helpers/containment.js';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();

async function logsOf(body: string, timeoutMs = 10_000): Promise<string[]> {
  const sb = await load(hostileSource(body), { limits: { memoryMb: 128, timeoutMs } });
  const [report] = await sb.invoke([{ type: 'track' }]);
  expect(report!.outcome).toEqual({ outcome: 'success' });
  await expectBenignDelivered(sb);
  return report!.logs;
}

describe('crypto handles', () => {
  it('the host refuses handles it did not give out, of the wrong kind, or released', () => {
    const host = new IsolateCrypto();
    const hash = host.call(1, 'hash', 'sha256') as number;
    const key = (host.call(1, 'createKey', 'secret', ['v', new Uint8Array(16)]) as { handle: number }).handle;
    const refused = (value: unknown) => (value as { error?: string }).error;
    // Unknown, forged and cross-kind handles.
    expect(refused(host.call(1, 'update', 999_999, 'x'))).toMatch(/released/);
    expect(refused(host.call(1, 'update', -1, 'x'))).toMatch(/released/);
    expect(refused(host.call(1, 'update', 'constructor', 'x'))).toMatch(/released/);
    expect(refused(host.call(1, 'update', key, 'x'))).toMatch(/released/);
    expect(refused(host.call(1, 'signFinal', hash, ['k', hash, 'private', null]))).toMatch(/released/);
    // A key spec whose handle names a hash state is not a key, and without its DER form it is nothing.
    const signer = host.call(1, 'sign', 'sha256') as number;
    expect(refused(host.call(1, 'signFinal', signer, ['k', hash, 'private', null]))).toMatch(/released/);
    // Use after free: a digested hash, and a state whose invocation ended.
    expect(typeof host.call(1, 'digest', hash)).toBe('string');
    expect(refused(host.call(1, 'digest', hash))).toMatch(/released/);
    const other = host.call(2, 'hash', 'sha256') as number;
    host.end([2]);
    expect(refused(host.call(2, 'update', other, 'x'))).toMatch(/released/);
    // Keys outlive invocations; everything ends with the isolate.
    expect(host.call(1, 'keyExport', ['k', key, 'secret', null])).toEqual({ bytes: '\0'.repeat(16) });
    host.close();
    expect(refused(host.call(1, 'keyExport', ['k', key, 'secret', null]))).toMatch(/closed/);
    expect(host.size).toBe(0);
  });

  it('user code cannot reach or forge a handle from inside the isolate', async () => {
    const logs = await logsOf(`
      const h = crypto.createHash('sha256');
      console.log(Object.getOwnPropertyNames(h).length, JSON.stringify(h), Object.keys(crypto.createPrivateKey(settings.pem ?? ${JSON.stringify(TEST_KEY)})).length);
      const fake = ['k', 1, 'private', new Uint8Array(0)];
      const tryIt = (f) => { try { return String(f()); } catch (e) { return e.name + ': ' + e.message.slice(0, 40); } };
      console.log(tryIt(() => crypto.createSign('sha256').update('x').sign(fake).length));
      console.log(tryIt(() => crypto.createSign('sha256').update('x').sign({ key: fake }).length));
      console.log(tryIt(() => crypto.KeyObject.prototype.export.call({})));
      console.log(tryIt(() => new crypto.KeyObject('secret', { handle: 1, der: '' })));`);
    expect(logs[0]).toBe('0 {} 0');
    // Forged specs are user values: Node parses them as keys, and rejects them.
    expect(logs[1]).toMatch(/^TypeError|^Error/);
    expect(logs[2]).toMatch(/^TypeError|^Error/);
    expect(logs[3]).toMatch(/^TypeError/);
    // Even a KeyObject made by hand names the host table only through the DER form it carries.
    expect(logs[4]).not.toMatch(/^\[object/);
  });

  it('unfinished hashes are capped per isolate and released when their invocation ends', async () => {
    const sb = await load(
      hostileSource(`
        const kept = [];
        let made = 0;
        try { for (;;) { kept.push(crypto.createHash('sha256')); made++; } } catch (e) { console.log(e.name, made); }
        try { kept[0].update('still usable').digest('hex'); console.log('first ok'); } catch (e) { console.log('first', e.message); }
        globalThis.leftover = kept;`),
      { limits: { memoryMb: 128, timeoutMs: 10_000 } },
    );
    const [first] = await sb.invoke([{ type: 'track' }]);
    expect(first!.logs).toEqual([`RangeError ${BOUNDS.cryptoStatesPerIsolate}`, 'first ok']);
    // The states the first invocation left are gone: the next one can make as many again.
    const [second] = await sb.invoke([{ type: 'track' }]);
    expect(second!.logs).toEqual([`RangeError ${BOUNDS.cryptoStatesPerIsolate}`, 'first ok']);
    // And a state kept across invocations is released, not readable.
    const sb2 = await load(
      `let h; async function onTrack(event) {
        if (!h) { h = crypto.createHash('sha256'); return; }
        try { h.update('x'); console.log('usable'); } catch (e) { console.log(e.code, e.message); }
      }`,
    );
    await sb2.invoke([{ type: 'track' }]);
    const [later] = await sb2.invoke([{ type: 'track' }]);
    expect(later!.logs).toEqual([
      'ERR_DFN_CRYPTO_BOUND crypto: this object was released (finished, or its invocation ended)',
    ]);
  });

  it('key objects past the table size evict the oldest, which still work', async () => {
    const logs = await logsOf(`
      const keys = [];
      for (let i = 0; i < ${BOUNDS.cryptoKeysPerIsolate * 2}; i++) keys.push(crypto.createSecretKey(Buffer.from('key ' + i)));
      const mac = (k) => crypto.createHmac('sha256', k).update('m').digest('hex');
      console.log(mac(keys[0]) === crypto.createHmac('sha256', 'key 0').update('m').digest('hex'), keys[0].export().toString());
      console.log(mac(keys.at(-1)) === crypto.createHmac('sha256', 'key ${BOUNDS.cryptoKeysPerIsolate * 2 - 1}').update('m').digest('hex'));`);
    expect(logs).toEqual(['true key 0', 'true']);
  });
});

describe('crypto work and sizes', () => {
  it('refuses scrypt N=2^30, pbkdf2 of billions of iterations and huge keys at once', async () => {
    const before = rssMb();
    const started = Date.now();
    const logs = await logsOf(`
      const tryIt = (f) => { try { f(); return 'ok'; } catch (e) { return e.name + ' ' + (e.code ?? ''); } };
      console.log(tryIt(() => crypto.scryptSync('pw', 'salt', 64, { N: 2 ** 30, maxmem: 2 ** 40 })));
      console.log(tryIt(() => crypto.scryptSync('pw', 'salt', 64, { N: 2 ** 14, r: 8, p: 1000 })));
      console.log(tryIt(() => crypto.scryptSync('pw', 'salt', 1e9)));
      console.log(tryIt(() => crypto.pbkdf2Sync('pw', 'salt', 1e9, 64, 'sha512')));
      console.log(tryIt(() => crypto.pbkdf2Sync('pw', 'salt', 1000, 1e8, 'sha512')));
      console.log(tryIt(() => crypto.pbkdf2Sync('pw', 'salt', 1, 1e7, 'sha512')));
      console.log(tryIt(() => crypto.createHash('shake256', { outputLength: 1e9 }).digest()));
      console.log(tryIt(() => crypto.scryptSync('pw', 'salt', 64)), tryIt(() => crypto.pbkdf2Sync('pw', 'salt', 100000, 32, 'sha256')));`);
    expect(logs).toEqual([
      'RangeError ERR_DFN_CRYPTO_BOUND',
      'RangeError ERR_DFN_CRYPTO_BOUND',
      'RangeError ERR_DFN_CRYPTO_BOUND',
      'RangeError ERR_DFN_CRYPTO_BOUND',
      'RangeError ERR_DFN_CRYPTO_BOUND',
      'RangeError ERR_DFN_CRYPTO_BOUND',
      'RangeError ERR_DFN_CRYPTO_BOUND',
      'ok ok',
    ]);
    // Refused before any work: the whole load and invocation took nowhere near an N=2^30 scrypt (minutes).
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(rssMb() - before).toBeLessThan(200);
  });

  it('refuses inputs past the bound before copying them to the host, and streams hashes of any total size', async () => {
    const max = BOUNDS.cryptoInputBytes;
    const logs = await logsOf(`
      const big = Buffer.alloc(${max} + 1, 1);
      const tryIt = (f) => { try { f(); return 'ok'; } catch (e) { return e.name; } };
      console.log(tryIt(() => crypto.createHash('sha256').update(big)), tryIt(() => crypto.createHmac('sha256', big)));
      console.log(tryIt(() => crypto.createCipheriv('aes-256-ctr', Buffer.alloc(32), Buffer.alloc(16)).update(big)));
      console.log(tryIt(() => crypto.timingSafeEqual(big, big)), tryIt(() => crypto.createPrivateKey(big)));
      console.log(tryIt(() => crypto.createHash('sha256').update('x'.repeat(${max} + 1))));
      console.log(tryIt(() => zlib.gzipSync(big)));
      const h = crypto.createHash('sha256');
      const chunk = Buffer.alloc(4 << 20, 1);
      for (let i = 0; i < 6; i++) h.update(chunk);
      console.log(h.digest('hex').length);`);
    expect(logs).toEqual([
      'RangeError RangeError',
      'RangeError',
      'RangeError RangeError',
      'RangeError',
      'RangeError',
      '64',
    ]);
  });

  it('a small view of a large buffer crosses as its own bytes only', async () => {
    const max = BOUNDS.cryptoInputBytes;
    const logs = await logsOf(`
      const big = new Uint8Array(${max} + 4096);
      big.set([1, 2, 3], ${max});
      const view = new Uint8Array(big.buffer, ${max}, 3);
      const dv = new DataView(big.buffer, ${max}, 3);
      console.log(crypto.createHash('sha256').update(view).digest('hex'), crypto.createHash('sha256').update(dv).digest('hex'));
      console.log(zlib.gunzipSync(zlib.gzipSync(view)).join(','));`);
    const expected = createHash('sha256')
      .update(Buffer.from([1, 2, 3]))
      .digest('hex');
    expect(logs).toEqual([`${expected} ${expected}`, '1,2,3']);
  });

  it('refuses RSA keys too large to sign with quickly, and bounds subtle operations', async () => {
    const logs = await logsOf(`
      const tryIt = async (f) => { try { await f(); return 'ok'; } catch (e) { return e.name + ' ' + e.message; } };
      console.log(await tryIt(() => crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 16384, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign'])));
      const k = await crypto.subtle.importKey('raw', Buffer.from('pw'), 'PBKDF2', false, ['deriveBits']);
      console.log(await tryIt(() => crypto.subtle.deriveBits({ name: 'PBKDF2', salt: Buffer.from('s'), iterations: 1e9, hash: 'SHA-256' }, k, 256)));
      console.log(await tryIt(() => crypto.subtle.deriveBits({ name: 'PBKDF2', salt: Buffer.from('s'), iterations: 1, hash: 'SHA-256' }, k, 2 ** 30)));
      const many = [];
      for (let i = 0; i < 500; i++) many.push(crypto.subtle.digest('SHA-256', Buffer.from('x')).then(() => 'ok', (e) => e.message.slice(0, 30)));
      const results = await Promise.all(many);
      console.log(results.filter((r) => r === 'ok').length > 0, results.filter((r) => r !== 'ok').every((r) => /at most/.test(r)));`);
    expect(logs[0]).toMatch(/^RangeError crypto: keys of at most 4096 bits can be generated/);
    expect(logs[1]).toMatch(/^RangeError crypto: PBKDF2 can run/);
    expect(logs[2]).toMatch(/^RangeError crypto: at most \d+ bits can be derived/);
    expect(logs[3]).toBe('true true');
  });
});

describe('zlib', () => {
  it('a decompression bomb stops at the output cap instead of filling the host', async () => {
    const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024)); // 256 MiB of zeros in ~260 KB
    const before = rssMb();
    const sb = await load(
      hostileSource(`
        const bomb = Buffer.from(settings.bomb, 'base64');
        try { zlib.gunzipSync(bomb); console.log('inflated'); } catch (e) { console.log(e.name, e.code, e.message); }
        try { zlib.gunzipSync(bomb, { maxOutputLength: 2 ** 40 }); console.log('inflated'); } catch (e) { console.log(e.code); }
        try { zlib.inflateSync(Buffer.from('not deflate')); } catch (e) { console.log(e.code, e.errno); }`),
      { settings: { bomb: bomb.toString('base64') }, limits: { memoryMb: 128, timeoutMs: 10_000 } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual([
      `RangeError ERR_BUFFER_TOO_LARGE Cannot create a Buffer larger than ${BOUNDS.zlibOutputBytes} bytes`,
      'ERR_BUFFER_TOO_LARGE',
      'Z_DATA_ERROR -3',
    ]);
    expect(rssMb() - before).toBeLessThan(200);
    await expectBenignDelivered(sb);
  });
});

const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIBOy0rS6ft9IS3BuGCazgw10RRPRdLmOO6i8Ak4pvXQQ
-----END PRIVATE KEY-----
`;
