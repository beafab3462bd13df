// crypto in the sandbox against crypto in plain Node: the same snippets, the same inputs, the same
// outputs, byte for byte (errors by class, code and message). Deterministic operations are compared
// directly; randomised ones (ECDSA, RSA-PSS, OAEP, random values) by verifying in the other runtime.

import nodeCrypto, { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const KEYS = {
  rsaPrivate: rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
  rsaPublic: rsa.publicKey.export({ format: 'pem', type: 'spki' }) as string,
  rsaPkcs1: rsa.privateKey.export({ format: 'pem', type: 'pkcs1' }) as string,
  ecPrivate: ec.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
  ecPublic: ec.publicKey.export({ format: 'pem', type: 'spki' }) as string,
  edPrivate: ed.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
  edPublic: ed.publicKey.export({ format: 'pem', type: 'spki' }) as string,
  rsaJwk: rsa.publicKey.export({ format: 'jwk' }),
};

/** Turns any result into comparable text, the same in both runtimes. */
const SHOW = `(v) => {
  const hex = (u) => Array.from(u, (b) => b.toString(16).padStart(2, '0')).join('');
  const one = (x) => {
    if (x instanceof Error) return 'error ' + x.name + ' ' + (x.code ?? '') + ' ' + x.message;
    if (x instanceof ArrayBuffer) return 'ab:' + hex(new Uint8Array(x));
    if (ArrayBuffer.isView(x)) return 'bytes:' + hex(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    if (x === undefined) return 'undefined';
    if (Array.isArray(x)) return '[' + x.map(one).join(',') + ']';
    if (x && typeof x === 'object' && !(x.constructor && /KeyObject|CryptoKey/.test(x.constructor.name)))
      return '{' + Object.keys(x).sort().map((k) => k + ':' + one(x[k])).join(',') + '}';
    if (x && typeof x === 'object') return x.constructor.name + ' ' + (x.type ?? '');
    return typeof x + ':' + String(x);
  };
  return one(v);
}`;

const HASHES = [
  'md5',
  'sha1',
  'sha224',
  'sha256',
  'sha384',
  'sha512',
  'sha512-256',
  'sha3-256',
  'RSA-SHA256',
  'SHA256',
];
const INPUTS = [
  "''",
  "'hello'",
  "'héllo ✓ 😀'",
  'Buffer.from([0, 255, 128])',
  'new Uint16Array([1, 65535])',
  "'x'.repeat(10000)",
];
const ENCODINGS = ['undefined', "'hex'", "'base64'", "'base64url'", "'latin1'"];

/** Each case: a body run as an async function of (crypto, Buffer, keys, TextEncoder); its result is shown. */
function cases(): string[] {
  const out: string[] = [];
  for (const h of HASHES) {
    for (const input of INPUTS) {
      for (const enc of ENCODINGS)
        out.push(`return crypto.createHash('${h}').update(${input}).digest(${enc});`);
    }
    out.push(`return crypto.createHmac('${h}', 'key').update('data').digest('hex');`);
    out.push(
      `return crypto.createHmac('${h}', Buffer.alloc(200, 7)).update('a').update(Buffer.from('b')).digest();`,
    );
  }
  out.push(
    "return crypto.createHash('sha256').update('48656c6c6f', 'hex').update('aGk=', 'base64').digest('hex');",
    "const h = crypto.createHash('sha256').update('a'); const c = h.copy(); return [h.digest('hex'), c.update('b').digest('hex')];",
    "const h = crypto.createHash('sha256'); h.digest(); try { h.digest(); } catch (e) { return e; }",
    "const h = crypto.createHash('sha256'); h.digest(); try { h.update('x'); } catch (e) { return e; }",
    "const h = crypto.createHmac('sha256', 'k'); return [h.digest('hex'), h.digest('hex')];",
    "try { crypto.createHash('nope'); } catch (e) { return e; }",
    "try { crypto.createHash('sha256').update(42); } catch (e) { return e; }",
    "return crypto.createHash('shake256', { outputLength: 10 }).update('x').digest('hex');",
    "return crypto.getHashes().includes('sha256') && crypto.getCiphers().includes('aes-256-gcm') && crypto.getCurves().includes('prime256v1');",
  );
  // Signatures: RSA PKCS#1 v1.5 is deterministic; ECDSA and PSS are checked by verifying.
  for (const alg of ['RSA-SHA256', 'sha256', 'SHA384', 'sha512', 'RSA-SHA1']) {
    out.push(`return crypto.createSign('${alg}').update('payload').sign(keys.rsaPrivate, 'base64');`);
    out.push(`return crypto.createSign('${alg}').update('pay').update('load').sign({ key: keys.rsaPkcs1 });`);
    out.push(
      `const s = crypto.createSign('${alg}').update('x').sign(keys.rsaPrivate); return [crypto.createVerify('${alg}').update('x').verify(keys.rsaPublic, s), crypto.createVerify('${alg}').update('y').verify(keys.rsaPublic, s)];`,
    );
  }
  out.push(
    "const s = crypto.createSign('sha256').update('x').sign(keys.ecPrivate); return crypto.createVerify('sha256').update('x').verify(keys.ecPublic, s);",
    "const s = crypto.createSign('sha256').update('x').sign({ key: keys.ecPrivate, dsaEncoding: 'ieee-p1363' }); return [s.length, crypto.verify('sha256', Buffer.from('x'), { key: keys.ecPublic, dsaEncoding: 'ieee-p1363' }, s)];",
    "const s = crypto.sign('sha256', Buffer.from('x'), { key: keys.rsaPrivate, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }); return crypto.verify('sha256', Buffer.from('x'), { key: keys.rsaPublic, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, s);",
    "return crypto.sign(null, Buffer.from('ed'), keys.edPrivate).toString('hex');",
    "return crypto.verify(null, Buffer.from('ed'), keys.edPublic, crypto.sign(null, Buffer.from('ed'), keys.edPrivate));",
    "return crypto.sign('sha256', Buffer.from('one shot'), keys.rsaPrivate).toString('base64');",
    "const v = crypto.createVerify('sha256').update('x'); return v.verify(keys.rsaPublic, 'not base64 !!', 'base64');",
    "try { crypto.createSign('sha256').update('x').sign('not a key'); } catch (e) { return e; }",
    "try { crypto.createSign('nope'); } catch (e) { return e; }",
  );
  // Key objects.
  out.push(
    'const k = crypto.createPrivateKey(keys.rsaPrivate); return [k.type, k.asymmetricKeyType, k.asymmetricKeyDetails.modulusLength, k.asymmetricKeyDetails.publicExponent, k.constructor.name, k instanceof crypto.KeyObject];',
    "const k = crypto.createPublicKey(keys.rsaPrivate); return [k.type, k.export({ format: 'pem', type: 'spki' }) === keys.rsaPublic, k.export({ format: 'jwk' })];",
    "const k = crypto.createPublicKey(keys.ecPublic); return [k.asymmetricKeyType, k.asymmetricKeyDetails, k.export({ format: 'der', type: 'spki' })];",
    "const k = crypto.createPrivateKey(keys.rsaPrivate); return k.export({ format: 'pem', type: 'pkcs1' });",
    "const k = crypto.createPublicKey({ key: keys.rsaJwk, format: 'jwk' }); return k.export({ format: 'pem', type: 'pkcs1' });",
    "const k = crypto.createSecretKey(Buffer.from('secret')); return [k.type, k.symmetricKeySize, k.export(), k.export({ format: 'jwk' })];",
    "const k = crypto.createSecretKey('abcd', 'hex'); return k.export();",
    'const a = crypto.createPublicKey(keys.rsaPublic); const b = crypto.createPublicKey(keys.rsaPrivate); return [a.equals(b), a.equals(crypto.createPublicKey(keys.ecPublic))];',
    "const k = crypto.createPrivateKey(keys.rsaPrivate); return crypto.createSign('sha256').update('ko').sign(k, 'hex');",
    "const k = crypto.createPrivateKey(keys.rsaPrivate); const p = crypto.createPublicKey(k); const s = crypto.sign('sha256', Buffer.from('x'), k); return crypto.verify('sha256', Buffer.from('x'), p, s);",
    "return crypto.createHmac('sha256', crypto.createSecretKey(Buffer.from('k'))).update('x').digest('hex');",
    "try { crypto.createPrivateKey('-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----'); } catch (e) { return e.name; }",
    'try { crypto.createPublicKey(42); } catch (e) { return e; }',
    "const enc = crypto.createPrivateKey(keys.rsaPrivate).export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw' }); const k = crypto.createPrivateKey({ key: enc, passphrase: 'pw' }); return k.export({ format: 'pem', type: 'pkcs8' }) === keys.rsaPrivate;",
    "const ct = crypto.publicEncrypt(keys.rsaPublic, Buffer.from('secret')); return crypto.privateDecrypt(keys.rsaPrivate, ct).toString();",
    "return crypto.publicDecrypt(keys.rsaPublic, crypto.privateEncrypt(keys.rsaPrivate, Buffer.from('sig'))).toString();",
  );
  // Ciphers.
  const key16 = 'Buffer.alloc(16, 1)';
  const key32 = 'Buffer.alloc(32, 2)';
  for (const [alg, key, iv] of [
    ['aes-128-cbc', key16, 'Buffer.alloc(16, 3)'],
    ['aes-256-cbc', key32, 'Buffer.alloc(16, 3)'],
    ['aes-256-ctr', key32, 'Buffer.alloc(16, 4)'],
    ['aes-128-ecb', key16, 'null'],
  ] as const) {
    for (const input of ["'hello world'", "'x'.repeat(100)", "''", "'héllo ✓'"]) {
      out.push(
        `const c = crypto.createCipheriv('${alg}', ${key}, ${iv}); const e = c.update(${input}, 'utf8', 'base64') + c.final('base64'); const d = crypto.createDecipheriv('${alg}', ${key}, ${iv}); return [e, d.update(e, 'base64', 'utf8') + d.final('utf8')];`,
      );
    }
    out.push(
      `const c = crypto.createCipheriv('${alg}', ${key}, ${iv}); return Buffer.concat([c.update(Buffer.from([1,2,3])), c.final()]);`,
    );
  }
  for (const [alg, key, iv] of [
    ['aes-256-gcm', key32, 'Buffer.alloc(12, 5)'],
    ['aes-128-gcm', key16, 'Buffer.alloc(12, 6)'],
    ['chacha20-poly1305', key32, 'Buffer.alloc(12, 7)'],
  ] as const) {
    out.push(
      `const c = crypto.createCipheriv('${alg}', ${key}, ${iv}, { authTagLength: 16 }); c.setAAD(Buffer.from('aad')); const e = Buffer.concat([c.update('secret text'), c.final()]); const tag = c.getAuthTag(); const d = crypto.createDecipheriv('${alg}', ${key}, ${iv}, { authTagLength: 16 }); d.setAAD(Buffer.from('aad')); d.setAuthTag(tag); return [e, tag, Buffer.concat([d.update(e), d.final()]).toString()];`,
      `const c = crypto.createCipheriv('${alg}', ${key}, ${iv}, { authTagLength: 16 }); const e = Buffer.concat([c.update('x'), c.final()]); const d = crypto.createDecipheriv('${alg}', ${key}, ${iv}, { authTagLength: 16 }); d.setAuthTag(Buffer.alloc(16)); d.update(e); try { d.final(); } catch (e) { return e; }`,
    );
  }
  out.push(
    "try { crypto.createCipheriv('aes-256-cbc', Buffer.alloc(5), Buffer.alloc(16)); } catch (e) { return e; }",
    "try { crypto.createCipheriv('aes-256-cbc', Buffer.alloc(32), Buffer.alloc(3)); } catch (e) { return e; }",
    "try { crypto.createCipheriv('nope', Buffer.alloc(32), Buffer.alloc(16)); } catch (e) { return e; }",
    "const d = crypto.createDecipheriv('aes-128-cbc', Buffer.alloc(16), Buffer.alloc(16)); d.update(Buffer.alloc(16, 9)); try { d.final(); } catch (e) { return e; }",
    "const c = crypto.createCipheriv('aes-128-cbc', Buffer.alloc(16), Buffer.alloc(16)); c.setAutoPadding(false); return Buffer.concat([c.update(Buffer.alloc(16, 1)), c.final()]);",
    "const c = crypto.createCipheriv('aes-128-cbc', Buffer.alloc(16), Buffer.alloc(16)); c.setAutoPadding(false); c.update(Buffer.alloc(3)); try { c.final(); } catch (e) { return e; }",
    "const c = crypto.createCipheriv('aes-128-cbc', 'abcdefghijklmnop', 'ponmlkjihgfedcba'); return c.update('text', 'utf8', 'hex') + c.final('hex');",
    "const c = crypto.createCipheriv('aes-128-cbc', crypto.createSecretKey(Buffer.alloc(16, 1)), Buffer.alloc(16)); return c.update('k', 'utf8', 'hex') + c.final('hex');",
  );
  // Key derivation, comparison, random integers' validation.
  for (const [iter, len, digest] of [
    [1, 32, 'sha256'],
    [1000, 64, 'sha512'],
    [2, 20, 'sha1'],
  ] as const) {
    out.push(`return crypto.pbkdf2Sync('password', 'salt', ${iter}, ${len}, '${digest}');`);
  }
  out.push(
    "return crypto.pbkdf2Sync(Buffer.from('pw'), Buffer.from('s'), 10, 16, 'sha256').toString('hex');",
    "try { crypto.pbkdf2Sync('pw', 's', 1, 16, 'nope'); } catch (e) { return e; }",
    "try { crypto.pbkdf2Sync('pw', 's', -1, 16, 'sha256'); } catch (e) { return e; }",
    "return crypto.scryptSync('password', 'salt', 64);",
    "return crypto.scryptSync('pw', 'NaCl', 32, { N: 1024, r: 8, p: 2 }).toString('base64');",
    "try { crypto.scryptSync('pw', 's', 32, { N: 3 }); } catch (e) { return e; }",
    "return new Promise((ok) => crypto.pbkdf2('pw', 's', 5, 16, 'sha256', (err, key) => ok([err, key])));",
    "return new Promise((ok) => crypto.scrypt('pw', 's', 16, (err, key) => ok([err, key])));",
    "return [crypto.timingSafeEqual(Buffer.from('abc'), Buffer.from('abc')), crypto.timingSafeEqual(Buffer.from('abc'), Buffer.from('abd'))];",
    "try { crypto.timingSafeEqual(Buffer.from('a'), Buffer.from('ab')); } catch (e) { return e; }",
    "try { crypto.timingSafeEqual('a', 'a'); } catch (e) { return e; }",
    'const n = crypto.randomInt(10); const m = crypto.randomInt(5, 7); return [n >= 0 && n < 10, m === 5 || m === 6];',
    'try { crypto.randomInt(5, 5); } catch (e) { return e; }',
    "try { crypto.randomInt('x'); } catch (e) { return e; }",
    'try { crypto.randomInt(0, 2 ** 49); } catch (e) { return e; }',
    'return new Promise((ok) => crypto.randomInt(3, (err, n) => ok([err, n >= 0 && n < 3])));',
    'return [crypto.randomBytes(8).length, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID())];',
  );
  // webcrypto.subtle.
  out.push(
    "return crypto.subtle.digest('SHA-256', new TextEncoder().encode('abc'));",
    "return crypto.webcrypto.subtle.digest({ name: 'SHA-512' }, Buffer.from('abc'));",
    "const k = await crypto.subtle.importKey('raw', Buffer.from('key'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']); const s = await crypto.subtle.sign('HMAC', k, Buffer.from('data')); return [s, await crypto.subtle.verify('HMAC', k, s, Buffer.from('data')), await crypto.subtle.verify('HMAC', k, s, Buffer.from('other')), k.type, k.extractable, k.algorithm, k.usages];",
    "const der = crypto.createPrivateKey(keys.rsaPrivate).export({ format: 'der', type: 'pkcs8' }); const k = await crypto.subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['sign']); return [await crypto.subtle.sign('RSASSA-PKCS1-v1_5', k, Buffer.from('jwt')), k.algorithm.modulusLength, k.algorithm.publicExponent];",
    "const k = await crypto.subtle.importKey('spki', crypto.createPublicKey(keys.rsaPublic).export({ format: 'der', type: 'spki' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify']); const s = crypto.sign('sha256', Buffer.from('m'), keys.rsaPrivate); return crypto.subtle.verify('RSASSA-PKCS1-v1_5', k, s, Buffer.from('m'));",
    "const priv = await crypto.subtle.importKey('pkcs8', crypto.createPrivateKey(keys.ecPrivate).export({ format: 'der', type: 'pkcs8' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']); const pub = await crypto.subtle.importKey('spki', crypto.createPublicKey(keys.ecPublic).export({ format: 'der', type: 'spki' }), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']); const s = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, priv, Buffer.from('m')); return [s.byteLength, await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, s, Buffer.from('m')), await crypto.subtle.exportKey('jwk', pub)];",
    "const k = await crypto.subtle.importKey('raw', Buffer.alloc(32, 1), 'AES-GCM', true, ['encrypt', 'decrypt']); const iv = Buffer.alloc(12, 2); const e = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: Buffer.from('a') }, k, Buffer.from('plain')); return [e, Buffer.from(await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: Buffer.from('a') }, k, e)).toString(), await crypto.subtle.exportKey('raw', k)];",
    "const k = await crypto.subtle.importKey('raw', Buffer.alloc(16, 1), 'AES-GCM', false, ['decrypt']); try { await crypto.subtle.decrypt({ name: 'AES-GCM', iv: Buffer.alloc(12) }, k, Buffer.alloc(20)); } catch (e) { return [e.name, e.message]; }",
    "const k = await crypto.subtle.importKey('raw', Buffer.from('k'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']); try { await crypto.subtle.exportKey('raw', k); } catch (e) { return [e.name, e.message]; }",
    "const k = await crypto.subtle.importKey('jwk', keys.rsaJwk, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify']); return crypto.subtle.exportKey('spki', k);",
    "const k = await crypto.subtle.importKey('raw', Buffer.from('pw'), 'PBKDF2', false, ['deriveBits']); return crypto.subtle.deriveBits({ name: 'PBKDF2', salt: Buffer.from('s'), iterations: 1000, hash: 'SHA-256' }, k, 256);",
    "const k = await crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign']); return [k.type, k.algorithm.name, k.algorithm.length, (await crypto.subtle.exportKey('raw', k)).byteLength];",
    "try { await crypto.subtle.digest('MD5', Buffer.from('x')); } catch (e) { return [e.name, e.message]; }",
    "const p = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']); const s = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, p.privateKey, Buffer.from('g')); return [p.publicKey.type, p.privateKey.type, p.privateKey.usages, p.publicKey.algorithm, await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, p.publicKey, s, Buffer.from('g'))];",
    "const p = await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify']); const der = await crypto.subtle.exportKey('pkcs8', p.privateKey); const k = crypto.createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }); return [k.asymmetricKeyDetails.modulusLength, p.publicKey.algorithm.publicExponent];",
  );
  return out;
}

async function inNode(bodies: string[]): Promise<string[]> {
  const show = new Function(`return ${SHOW}`)() as (v: unknown) => string;
  const out: string[] = [];
  for (const body of bodies) {
    const fn = new Function('crypto', 'Buffer', 'keys', 'TextEncoder', `return (async () => {${body}})();`);
    try {
      out.push(show(await fn(nodeCrypto, Buffer, KEYS, TextEncoder)));
    } catch (err) {
      out.push(`threw ${show(err)}`);
    }
  }
  return out;
}

describe('crypto: the sandbox and plain Node give the same results', () => {
  it('for hundreds of hash, HMAC, signature, key, cipher, KDF and subtle cases', async () => {
    const bodies = cases();
    expect(bodies.length).toBeGreaterThan(400);
    const sb = await load(
      `async function onTrack(event, settings) {
        const show = ${SHOW};
        for (const body of settings.bodies) {
          const fn = new Function('crypto', 'Buffer', 'keys', 'TextEncoder', 'return (async () => {' + body + '})();');
          try { console.log(show(await fn(crypto, Buffer, settings.keys, TextEncoder))); }
          catch (err) { console.log('threw ' + show(err)); }
        }
      }`,
      { settings: { bodies, keys: KEYS }, limits: { timeoutMs: 30_000, logBytes: 8_000_000 } },
    );
    const [report] = await sb.invoke([{ type: 'track', event: 'x' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    const expected = await inNode(bodies);
    // Compared case by case, so a failure names the snippet.
    const got = report!.logs;
    expect(got.length).toBe(bodies.length);
    const differences = bodies
      .map((body, i) => ({ body, sandbox: got[i], node: expected[i] }))
      .filter((c) => c.sandbox !== c.node);
    expect(differences).toEqual([]);
  });

  it('a signature made in the sandbox verifies in Node, and the reverse (ECDSA, PSS, OAEP)', async () => {
    const sb = await load(
      `async function onTrack(event, settings) {
        const k = settings.keys;
        console.log(crypto.createSign('sha256').update('m').sign(k.ecPrivate, 'base64'));
        console.log(crypto.sign('sha256', Buffer.from('m'), { key: k.rsaPrivate, padding: crypto.constants.RSA_PKCS1_PSS_PADDING }).toString('base64'));
        console.log(crypto.publicEncrypt({ key: k.rsaPublic, oaepHash: 'sha256' }, Buffer.from('sealed')).toString('base64'));
        console.log(crypto.createVerify('sha256').update('n').verify(k.ecPublic, settings.nodeSig, 'base64'));
      }`,
      {
        settings: {
          keys: KEYS,
          nodeSig: nodeCrypto.createSign('sha256').update('n').sign(KEYS.ecPrivate, 'base64'),
        },
      },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    const [ecdsa, pss, oaep, verified] = report!.logs;
    expect(nodeCrypto.createVerify('sha256').update('m').verify(KEYS.ecPublic, ecdsa!, 'base64')).toBe(true);
    expect(
      nodeCrypto.verify(
        'sha256',
        Buffer.from('m'),
        { key: KEYS.rsaPublic, padding: nodeCrypto.constants.RSA_PKCS1_PSS_PADDING },
        Buffer.from(pss!, 'base64'),
      ),
    ).toBe(true);
    expect(
      nodeCrypto
        .privateDecrypt({ key: KEYS.rsaPrivate, oaepHash: 'sha256' }, Buffer.from(oaep!, 'base64'))
        .toString(),
    ).toBe('sealed');
    expect(verified).toBe('true');
  });
});
