// fetch inside the sandbox against real HTTP servers on 127.0.0.1: node-fetch semantics, request
// traces with redaction, and the egress policy (metadata never, loopback only when allowed).

import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Destination } from '../helpers/destination.js';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();
let dest: Destination;
beforeAll(async () => {
  dest = await Destination.start();
});
afterAll(() => dest.close());

const allowLocal = { allowPrivateNetwork: true } as const;

describe('fetch', () => {
  it('sends method, headers and JSON body, and reads status, headers and JSON like node-fetch', async () => {
    dest.respond = (req) =>
      req.url === '/users' ? { status: 201, body: { id: 7 }, headers: { 'x-request-id': 'r1' } } : undefined;
    const sb = await load(
      `async function onIdentify(event, settings) {
        const res = await fetch(settings.url + '/users', {
          method: 'POST',
          headers: new Headers({ 'Content-Type': 'application/json', Authorization: 'Bearer ' + settings.token }),
          body: JSON.stringify({ email: event.traits.email }),
        });
        const body = await res.json();
        console.log(res.ok, res.status, res.headers.get('X-Request-Id'), body.id, res.url === settings.url + '/users');
      }`,
      { ...allowLocal, settings: { url: dest.url, token: 'tok_secret' }, sensitiveValues: ['tok_secret'] },
    );
    const [report] = await sb.invoke([{ type: 'identify', traits: { email: 'a@b.c' } }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    expect(report!.logs).toEqual(['true 201 r1 7 true']);
    const received = dest.requests.at(-1)!;
    expect(received.method).toBe('POST');
    expect(received.headers.authorization).toBe('Bearer tok_secret');
    expect(received.json()).toEqual({ email: 'a@b.c' });
    expect(report!.requests).toEqual([
      {
        method: 'POST',
        url: `${dest.url}/users`,
        status: 201,
        durationMs: expect.any(Number),
        requestHeaders: { authorization: '[redacted]', 'content-type': 'application/json' },
      },
    ]);
  });

  it('accepts a URL object, plain-object headers, URLSearchParams bodies and reads text', async () => {
    dest.respond = () => ({ status: 200, body: 'plain text' });
    const sb = await load(
      `async function onTrack(event, settings) {
        const url = new URL('/form', settings.url);
        const res = await fetch(url, { method: 'POST', headers: { 'X-Key': 'k' }, body: new URLSearchParams({ a: '1 2' }) });
        console.log(await res.text(), res.bodyUsed);
      }`,
      { ...allowLocal, settings: { url: dest.url } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual(['plain text true']);
    const received = dest.requests.at(-1)!;
    expect(received.body).toBe('a=1+2');
    expect(received.headers['content-type']).toBe('application/x-www-form-urlencoded;charset=UTF-8');
    expect(received.headers['x-key']).toBe('k');
  });

  it('redacts sensitive values in traced URLs and header values', async () => {
    dest.respond = () => undefined;
    const sb = await load(
      `async function onTrack(event, settings) { await fetch(settings.url + '/t?api_key=' + settings.key, { headers: { 'X-Token': settings.key } }); }`,
      {
        ...allowLocal,
        settings: { url: dest.url, key: 'abcd-1234-secret' },
        sensitiveValues: ['abcd-1234-secret'],
      },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.requests[0]!.url).toBe(`${dest.url}/t?api_key=[redacted]`);
    expect(report!.requests[0]!.requestHeaders['x-token']).toBe('[redacted]');
  });

  it('a 5xx answer turned into RetryError retries; 429 too; a 400 turned into ValidationError discards', async () => {
    const sb = await load(
      `async function onTrack(event, settings) {
        const res = await fetch(settings.url + '/status/' + event.properties.status);
        if (res.status >= 500 || res.status === 429) throw new RetryError('got ' + res.status);
        if (!res.ok) throw new ValidationError('got ' + res.status);
      }`,
      { ...allowLocal, settings: { url: dest.url } },
    );
    dest.respond = (req) => ({ status: Number(req.url.split('/').pop()), body: {} });
    const reports = await sb.invoke(
      [500, 429, 400, 204].map((status) => ({ type: 'track', properties: { status } })),
    );
    expect(reports.map((r) => r.outcome)).toEqual([
      { outcome: 'retry', errorType: 'Retry', message: 'got 500' },
      { outcome: 'retry', errorType: 'Retry', message: 'got 429' },
      { outcome: 'discard', errorType: 'MessageRejected', message: 'got 400' },
      { outcome: 'success' },
    ]);
    expect(reports.map((r) => r.requests.map((t) => t.status))).toEqual([[500], [429], [400], [204]]);
  });

  it('traces each concurrent invocation’s requests and logs under that invocation', async () => {
    dest.respond = () => undefined;
    const sb = await load(
      `async function onTrack(event, settings) {
        await fetch(settings.url + '/a/' + event.messageId);
        console.log('after a', event.messageId);
        await fetch(settings.url + '/b/' + event.messageId);
        console.log('after b', event.messageId);
      }`,
      { ...allowLocal, settings: { url: dest.url } },
    );
    const ids = ['m1', 'm2', 'm3', 'm4'];
    const reports = await sb.invoke(ids.map((messageId) => ({ type: 'track', messageId })));
    reports.forEach((r, i) => {
      expect(r.logs).toEqual([`after a ${ids[i]}`, `after b ${ids[i]}`]);
      expect(r.requests.map((t) => t.url)).toEqual([`${dest.url}/a/${ids[i]}`, `${dest.url}/b/${ids[i]}`]);
    });
  });

  it('follows redirects like node-fetch', async () => {
    dest.respond = (req) =>
      req.url === '/old'
        ? { status: 302, headers: { location: '/new' } }
        : { status: 200, body: { at: req.url } };
    const sb = await load(
      `async function onTrack(e, s) { const res = await fetch(s.url + '/old'); console.log(res.redirected, (await res.json()).at); }`,
      { ...allowLocal, settings: { url: dest.url } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual(['true /new']);
  });

  it('a network failure throws inside the function (Bad Request unless the function handles it)', async () => {
    const sb = await load(
      `async function onTrack() { await fetch('http://127.0.0.1:1/unreachable'); }`,
      allowLocal,
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toMatchObject({ outcome: 'discard', errorType: 'BadRequest' });
    expect(report!.outcome).toHaveProperty('message', expect.stringContaining('ECONNREFUSED'));
    expect(report!.requests[0]).toMatchObject({ status: 0, url: 'http://127.0.0.1:1/unreachable' });
  });
});

describe('fetch limits', () => {
  let slow: Server;
  let slowUrl: string;
  beforeAll(async () => {
    slow = createServer((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200);
        res.end(Buffer.alloc(64 * 1024, 97));
      }
      // '/hang' never answers: the per-request timeout must end it.
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    slowUrl = `http://127.0.0.1:${(slow.address() as { port: number }).port}`;
  });
  afterAll(() => {
    slow.closeAllConnections();
    slow.close();
  });

  it('ends a request that takes longer than the per-request timeout', async () => {
    const sb = await load(
      `async function onTrack(e, s) { try { await fetch(s.url + '/hang'); } catch (err) { console.log(err.name, err.message); } }`,
      {
        ...allowLocal,
        settings: { url: slowUrl },
        limits: { fetchTimeoutMs: 200, timeoutMs: 3000 },
      },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual([`FetchError request to ${slowUrl}/hang timed out after 200 ms`]);
  });

  it('refuses a response larger than the cap', async () => {
    const sb = await load(`async function onTrack(e, s) { await fetch(s.url + '/big'); }`, {
      ...allowLocal,
      settings: { url: slowUrl },
      limits: { fetchMaxResponseBytes: 1024 },
    });
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toHaveProperty(
      'message',
      `response body from ${slowUrl}/big exceeds the limit of 1024 bytes`,
    );
  });
});

describe('egress policy', () => {
  it('refuses the cloud metadata address even when private networks are allowed', async () => {
    const sb = await load(
      `async function onTrack() {
        try { await fetch('http://169.254.169.254/latest/meta-data/'); } catch (e) { console.log(e.message); }
        try { await fetch('http://[fd00:ec2::254]/'); } catch (e) { console.log(e.message); }
      }`,
      allowLocal,
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual([
      'fetch to http://169.254.169.254/latest/meta-data/ refused: 169.254.169.254 is a link-local (cloud metadata) address, which functions may never reach',
      'fetch to http://[fd00:ec2::254]/ refused: fd00:ec2::254 is a link-local (cloud metadata) address, which functions may never reach',
    ]);
  });

  it('refuses loopback and private addresses unless allowed, by IP and by resolved name', async () => {
    const sb = await load(`
      async function onTrack(event) {
        try { await fetch(event.properties.url); console.log('reached'); } catch (e) { console.log(e.message); }
      }`);
    const urls = [
      `${dest.url}/x`,
      `http://localhost:${dest.port}/x`,
      'http://10.1.2.3/x',
      'http://[::1]:9/x',
      'http://[::ffff:127.0.0.1]:9/',
    ];
    const before = dest.requests.length;
    const reports = await sb.invoke(urls.map((url) => ({ type: 'track', properties: { url } })));
    for (const r of reports) expect(r.logs[0]).toMatch(/refused: .* is a loopback or private address/);
    expect(dest.requests.length).toBe(before); // nothing reached the local server
  });

  it('checks every redirect hop: a public-looking redirect to the metadata address is refused', async () => {
    dest.respond = () => ({ status: 307, headers: { location: 'http://169.254.169.254/latest/' } });
    const sb = await load(`async function onTrack(e, s) { await fetch(s.url + '/go'); }`, {
      ...allowLocal,
      settings: { url: dest.url },
    });
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toHaveProperty(
      'message',
      expect.stringContaining('refused: 169.254.169.254 is a link-local'),
    );
  });

  it('refuses schemes other than http and https, with node-fetch 2’s TypeError', async () => {
    const sb = await load(`async function onTrack() { await fetch('file:///etc/passwd'); }`, allowLocal);
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toHaveProperty('message', 'Only HTTP(S) protocols are supported');
  });
});

describe('reports of a success without details (the runner)', () => {
  const FUNCTION = `
    async function onTrack(event, settings) {
      console.log('sending', event.messageId, settings.token);
      await fetch(settings.url + '/t', { headers: { 'x-token': settings.token } });
      if (event.properties.fail) throw new ValidationError('refused ' + settings.token);
    }
    async function onBatch(events, settings) {
      console.log('batch of', events.length);
      await fetch(settings.url + '/b', { headers: { 'x-token': settings.token } });
      return events.map((e) => ({ status: e.properties.fail ? 400 : 200 }));
    }`;
  const settings = { url: '', token: 'tok-secret-1' };
  const options = (successDetails?: boolean) => ({
    ...allowLocal,
    settings: { ...settings, url: dest.url },
    sensitiveValues: [settings.token],
    ...(successDetails === undefined ? {} : { successDetails }),
  });
  const ok = { type: 'track', messageId: 'ok', properties: {} };
  const bad = { type: 'track', messageId: 'bad', properties: { fail: true } };
  beforeEach(() => {
    dest.respond = () => undefined; // 200, whatever the tests above left it answering
  });

  it('carries no logs or requests for a success, and all of them, redacted, for a failure', async () => {
    const sb = await load(FUNCTION, options(false));
    const [success, failure] = await sb.invoke([ok, bad]);
    expect(success).toMatchObject({ outcome: { outcome: 'success' }, logs: [], requests: [] });
    expect(failure!.outcome).toMatchObject({ outcome: 'discard', message: 'refused [redacted]' });
    expect(failure!.logs).toEqual(['sending bad [redacted]']);
    expect(failure!.requests).toEqual([
      expect.objectContaining({ method: 'GET', url: `${dest.url}/t`, status: 200 }),
    ]);
    expect(failure!.requests[0]!.requestHeaders['x-token']).toBe('[redacted]');
  });

  it('an onBatch call shows its logs and requests when any of its events failed, and only then', async () => {
    const sb = await load(FUNCTION, options(false));
    const clean = await sb.invokeBatch([ok, ok]);
    expect(clean).toMatchObject({ outcome: { outcome: 'success' }, logs: [], requests: [] });
    const mixed = await sb.invokeBatch([ok, bad]);
    expect(mixed.results.map((r) => r.outcome)).toEqual(['success', 'discard']);
    expect(mixed.logs).toEqual(['batch of 2']);
    expect(mixed.requests).toEqual([expect.objectContaining({ url: `${dest.url}/b`, status: 200 })]);
  });

  it('by default (dfn test, the sandbox API) a success shows everything', async () => {
    const sb = await load(FUNCTION, options());
    const [success] = await sb.invoke([ok]);
    expect(success!.logs).toEqual(['sending ok [redacted]']);
    expect(success!.requests).toEqual([expect.objectContaining({ url: `${dest.url}/t`, status: 200 })]);
    expect(success!.requests[0]!.requestHeaders['x-token']).toBe('[redacted]');
  });
});
