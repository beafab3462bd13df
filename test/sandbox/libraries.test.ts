// Segment's default dependencies, used the way destination functions use them, checked against the same
// libraries (or Node's own modules) in plain Node; and a function that uses none of them evaluates none.

import { generateKeyPairSync } from 'node:crypto';
import { deflateSync, gunzipSync, gzipSync } from 'node:zlib';
import jwt from 'jsonwebtoken';
import { parsePhoneNumber } from 'libphonenumber-js';
import moment from 'moment-timezone';
import { v5 as uuidv5 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import xml from 'xml';
import xml2js from 'xml2js';
import { Destination } from '../helpers/destination.js';
import { sandboxes } from '../helpers/sandbox.js';

const { load, logsOf } = sandboxes();
const LAZY = [
  'jsonwebtoken',
  'moment',
  'xml',
  'xml2js',
  'zlib',
  'uuidv5',
  'libphonenumberjslib',
  'fetchretrylib',
];

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privatePem = rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
const publicPem = rsa.publicKey.export({ format: 'pem', type: 'spki' }) as string;

async function logsWith(body: string, settings: Record<string, unknown>): Promise<string[]> {
  const sb = await load(`async function onTrack(event, settings) {\n${body}\n}`, {
    settings,
    limits: { timeoutMs: 10_000, logBytes: 64_000 },
  });
  const [report] = await sb.invoke([{ type: 'track', event: 'x' }]);
  expect(report!.outcome).toEqual({ outcome: 'success' });
  return report!.logs;
}

describe('jsonwebtoken', () => {
  it('signs RS256 (a Google service-account assertion) that Node verifies with the public key', async () => {
    const [token, header] = await logsWith(
      `const now = 1700000000;
       const token = jsonwebtoken.sign(
         { iss: 'svc@project.iam.gserviceaccount.com', scope: 'https://www.googleapis.com/auth/cloud-platform', aud: 'https://oauth2.googleapis.com/token', iat: now, exp: now + 3600 },
         settings.privateKey, { algorithm: 'RS256', keyid: 'kid-1' });
       console.log(token);
       console.log(JSON.stringify(jsonwebtoken.decode(token, { complete: true }).header));`,
      { privateKey: privatePem },
    );
    const claims = jwt.verify(token!, publicPem, {
      algorithms: ['RS256'],
      ignoreExpiration: true,
    }) as jwt.JwtPayload;
    expect(claims.iss).toBe('svc@project.iam.gserviceaccount.com');
    expect(claims.exp).toBe(1_700_003_600);
    expect(JSON.parse(header!)).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'kid-1' });
    // PKCS#1 v1.5 is deterministic: the same token as jsonwebtoken in Node.
    const now = 1_700_000_000;
    expect(token).toBe(
      jwt.sign(
        {
          iss: 'svc@project.iam.gserviceaccount.com',
          scope: 'https://www.googleapis.com/auth/cloud-platform',
          aud: 'https://oauth2.googleapis.com/token',
          iat: now,
          exp: now + 3600,
        },
        privatePem,
        { algorithm: 'RS256', keyid: 'kid-1' },
      ),
    );
  });

  it('verifies tokens Node made, and rejects tampered, expired and wrong-algorithm ones as Node does', async () => {
    const hs = jwt.sign({ sub: 'u1' }, 'shh', { noTimestamp: true });
    const rs = jwt.sign({ sub: 'u2' }, privatePem, { algorithm: 'RS256', noTimestamp: true });
    const expired = jwt.sign({ sub: 'u3', exp: 1 }, 'shh');
    const logs = await logsWith(
      `const show = (f) => { try { return JSON.stringify(f()); } catch (e) { return e.name + ': ' + e.message; } };
       console.log(show(() => jsonwebtoken.verify(settings.hs, 'shh')));
       console.log(show(() => jsonwebtoken.verify(settings.rs, settings.publicKey)));
       console.log(show(() => jsonwebtoken.verify(settings.hs, 'wrong')));
       console.log(show(() => jsonwebtoken.verify(settings.expired, 'shh')));
       console.log(show(() => jsonwebtoken.verify(settings.rs, 'shh', { algorithms: ['HS256'] })));
       console.log(show(() => jsonwebtoken.verify(settings.hs.slice(0, -2) + 'xx', 'shh')));
       try { jsonwebtoken.verify(settings.expired, 'shh'); } catch (e) { console.log(e instanceof jsonwebtoken.TokenExpiredError, e.constructor.name); }`,
      { hs, rs, expired, publicKey: publicPem },
    );
    const show = (f: () => unknown) => {
      try {
        return JSON.stringify(f());
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
    };
    expect(logs).toEqual([
      show(() => jwt.verify(hs, 'shh')),
      show(() => jwt.verify(rs, publicPem)),
      show(() => jwt.verify(hs, 'wrong')),
      show(() => jwt.verify(expired, 'shh')),
      show(() => jwt.verify(rs, 'shh', { algorithms: ['HS256'] })),
      show(() => jwt.verify(`${hs.slice(0, -2)}xx`, 'shh')),
      'true TokenExpiredError',
    ]);
  });

  it('signs HS512 with expiresIn, verified in Node', async () => {
    const [hs] = await logsWith(
      `console.log(jsonwebtoken.sign({ b: 2 }, 'secret', { algorithm: 'HS512', expiresIn: '1h' }));`,
      {},
    );
    const claims = jwt.verify(hs!, 'secret', { algorithms: ['HS512'] }) as jwt.JwtPayload;
    expect(claims.b).toBe(2);
    expect(claims.exp! - claims.iat!).toBe(3600);
  });

  it('signs ES256 and verifies Node-made ES256 tokens (the ECDSA signature converted with Buffer#copy)', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ecPrivate = ec.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const ecPublic = ec.publicKey.export({ format: 'pem', type: 'spki' }) as string;
    const fromNode = jwt.sign({ n: 1 }, ecPrivate, { algorithm: 'ES256', noTimestamp: true });
    const [made, verified] = await logsWith(
      `console.log(jsonwebtoken.sign({ sub: 'u3' }, settings.privateKey, { algorithm: 'ES256' }));
       console.log(JSON.stringify(jsonwebtoken.verify(settings.token, settings.publicKey, { algorithms: ['ES256'] })));`,
      { privateKey: ecPrivate, publicKey: ecPublic, token: fromNode },
    );
    expect(jwt.verify(made!, ecPublic, { algorithms: ['ES256'] })).toMatchObject({ sub: 'u3' });
    expect(JSON.parse(verified!)).toEqual({ n: 1 });
  });
});

describe('moment (moment-timezone)', () => {
  it('converts and formats across time zones as moment-timezone in Node does', async () => {
    const logs = await logsOf(`
      console.log(moment.tz('2024-03-10 01:30', 'America/New_York').add(1, 'hour').format());
      console.log(moment.tz('2024-07-01T12:00:00Z', 'Europe/Paris').format('YYYY-MM-DD HH:mm z Z'));
      console.log(moment.utc('2020-02-29').add(1, 'year').format('LL'), moment('2021-01-01T00:00:00Z').tz('Asia/Kolkata').format());
      console.log(moment.tz.zone('Australia/Sydney').abbr(1700000000000), moment.unix(1700000000).utc().toISOString());
      console.log(moment.isMoment(moment()), moment.tz.names().length > 400, moment.duration(90, 'minutes').humanize());`);
    expect(logs).toEqual([
      moment.tz('2024-03-10 01:30', 'America/New_York').add(1, 'hour').format(),
      moment.tz('2024-07-01T12:00:00Z', 'Europe/Paris').format('YYYY-MM-DD HH:mm z Z'),
      `${moment.utc('2020-02-29').add(1, 'year').format('LL')} ${moment('2021-01-01T00:00:00Z').tz('Asia/Kolkata').format()}`,
      `${moment.tz.zone('Australia/Sydney')!.abbr(1_700_000_000_000)} ${moment.unix(1_700_000_000).utc().toISOString()}`,
      `true true ${moment.duration(90, 'minutes').humanize()}`,
    ]);
  });
});

describe('xml and xml2js', () => {
  it('parse and build XML as the same packages in Node do', async () => {
    const doc =
      '<order id="7"><item sku="a">2</item><item sku="b">3</item><note><![CDATA[x < y]]></note></order>';
    const logs = await logsWith(
      `const parsed = await xml2js.parseStringPromise(settings.doc);
       console.log(JSON.stringify(parsed));
       xml2js.parseString(settings.doc, { explicitArray: false, mergeAttrs: true }, (err, r) => console.log(err, JSON.stringify(r)));
       console.log(new xml2js.Builder({ headless: true }).buildObject({ root: { $: { v: '1' }, child: ['a', 'b'] } }));
       console.log(xml({ feed: [{ _attr: { lang: 'en' } }, { title: 'T & U' }, { entry: [{ id: 1 }] }] }, { declaration: true }));
       try { await xml2js.parseStringPromise('<a><b></a>'); } catch (e) { console.log(e.message.split('\\n')[0]); }`,
      { doc },
    );
    const builder = new xml2js.Builder({ headless: true });
    let broken = '';
    try {
      await xml2js.parseStringPromise('<a><b></a>');
    } catch (e) {
      broken = (e as Error).message.split('\n')[0]!;
    }
    expect(logs).toEqual([
      JSON.stringify(await xml2js.parseStringPromise(doc)),
      `null ${JSON.stringify(await xml2js.parseStringPromise(doc, { explicitArray: false, mergeAttrs: true }))}`,
      builder.buildObject({ root: { $: { v: '1' }, child: ['a', 'b'] } }),
      xml(
        { feed: [{ _attr: { lang: 'en' } }, { title: 'T & U' }, { entry: [{ id: 1 }] }] },
        { declaration: true },
      ),
      broken,
    ]);
  });
});

describe('zlib', () => {
  it('gzip, deflate and brotli round trips agree with Node’s zlib both ways', async () => {
    const text = 'Segment event payload '.repeat(200);
    const [gz, inflated, gunzipped, sizes, cb] = await logsWith(
      `console.log(zlib.gzipSync(settings.text).toString('base64'));
       console.log(zlib.inflateSync(Buffer.from(settings.deflated, 'base64')).toString());
       console.log(zlib.gunzipSync(Buffer.from(settings.gzipped, 'base64')).toString() === settings.text);
       console.log(zlib.brotliDecompressSync(zlib.brotliCompressSync(settings.text)).length, zlib.deflateRawSync('abc', { level: 9 }).toString('hex'), zlib.constants.Z_BEST_COMPRESSION);
       await new Promise((ok) => zlib.gzip(Buffer.from('cb form'), (err, out) => { console.log(err, zlib.gunzipSync(out).toString()); ok(); }));`,
      {
        text,
        deflated: deflateSync('from node').toString('base64'),
        gzipped: gzipSync(text).toString('base64'),
      },
    );
    expect(gunzipSync(Buffer.from(gz!, 'base64')).toString()).toBe(text);
    expect(Buffer.from(gz!, 'base64')).toEqual(gzipSync(text));
    expect(inflated).toBe('from node');
    expect(gunzipped).toBe('true');
    expect(sizes).toBe(`${text.length} 4b4c4a0600 9`);
    expect(cb).toBe('null cb form');
  });
});

describe('uuidv5, libphonenumberjslib', () => {
  it('match uuid’s v5 and libphonenumber-js in Node', async () => {
    const logs = await logsOf(`
      console.log(uuidv5('user@example.com', uuidv5.URL), uuidv5('example.com', uuidv5.DNS), uuidv5('x', '1b671a64-40d5-491e-99b0-da01ff1f3341'));
      const p = libphonenumberjslib.parsePhoneNumber('+44 20 7946 0958');
      console.log(p.number, p.country, p.formatNational(), p.isValid(), libphonenumberjslib.isValidPhoneNumber('123', 'US'));
      console.log(libphonenumberjslib.parsePhoneNumber('(213) 373-4253', 'US').format('E.164'));`);
    const p = parsePhoneNumber('+44 20 7946 0958');
    expect(logs).toEqual([
      `${uuidv5('user@example.com', uuidv5.URL)} ${uuidv5('example.com', uuidv5.DNS)} ${uuidv5('x', '1b671a64-40d5-491e-99b0-da01ff1f3341')}`,
      `${p.number} ${p.country} ${p.formatNational()} ${p.isValid()} false`,
      parsePhoneNumber('(213) 373-4253', 'US').format('E.164'),
    ]);
  });
});

describe('fetchretrylib', () => {
  let dest: Destination;
  beforeAll(async () => {
    dest = await Destination.start();
  });
  afterAll(() => dest.close());

  it('retries over the sandbox’s fetch until the destination answers', async () => {
    let calls = 0;
    dest.respond = () =>
      ++calls < 3 ? { status: 503, body: { busy: true } } : { status: 200, body: { ok: 1 } };
    const sb = await load(
      `async function onTrack(event, settings) {
        const fetchWithRetry = fetchretrylib(fetch, { retries: 3, retryDelay: 10, retryOn: [503] });
        const res = await fetchWithRetry(settings.url + '/track', { method: 'POST', body: JSON.stringify(event) });
        console.log(res.status, JSON.stringify(await res.json()));
      }`,
      { settings: { url: dest.url }, allowPrivateNetwork: true, limits: { timeoutMs: 10_000 } },
    );
    const [report] = await sb.invoke([{ type: 'track', event: 'Retry Me' }]);
    expect(report!.logs).toEqual(['200 {"ok":1}']);
    expect(dest.requests.map((r) => r.json().event)).toEqual(['Retry Me', 'Retry Me', 'Retry Me']);
    expect(report!.requests.map((r) => r.status)).toEqual([503, 503, 200]);
  });
});

describe('loaded only when used', () => {
  it('a function that reads none of them evaluates none', async () => {
    const sb = await load(`
      async function onTrack(event) {
        const accessors = ${JSON.stringify(LAZY)}.filter((n) => typeof Object.getOwnPropertyDescriptor(globalThis, n).get === 'function');
        console.log(accessors.length, Object.keys(globalThis).filter((n) => ${JSON.stringify(LAZY)}.includes(n)).length);
      }`);
    const [report] = await sb.invoke([{ type: 'track' }]);
    // Still the unevaluated accessors, and not enumerable, as Segment's globals are not.
    expect(report!.logs).toEqual([`${LAZY.length} 0`]);
  });

  it('a function may declare its own globals of the same names', async () => {
    const sb = await load(`
      let moment = 'own moment';
      var xml = 'own xml';
      function zlib() { return 'own zlib'; }
      async function onTrack(event) { console.log(moment, xml, zlib(), typeof jsonwebtoken.sign); }`);
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual(['own moment own xml own zlib function']);
  });

  it('reading one evaluates that one only; assigning one replaces it without evaluating it', async () => {
    const logs = await logsOf(`
      const before = typeof moment;
      jsonwebtoken = 'mine';
      const kinds = ${JSON.stringify(LAZY)}.map((n) => (typeof Object.getOwnPropertyDescriptor(globalThis, n).get === 'function' ? 'lazy' : 'loaded'));
      console.log(before, jsonwebtoken, kinds.join(','));`);
    expect(logs).toEqual(['function mine loaded,loaded,lazy,lazy,lazy,lazy,lazy,lazy']);
  });
});
