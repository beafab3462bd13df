// The sandbox's fetch against node-fetch 2 itself (the version Segment's runtime uses): each case runs the
// same snippet in the sandbox and in plain Node with node-fetch 2, against the same server on 127.0.0.1,
// and the results must be equal, what the server saw on the wire included.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxes } from '../helpers/sandbox.js';

/** node-fetch 2 has no types of its own here: it is what the snippets are handed, nothing more. */
const nodeFetch2 = createRequire(import.meta.url)('node-fetch-2') as {
  default: unknown;
  Headers: unknown;
  Request: unknown;
  Response: unknown;
};

const { load } = sandboxes();
let server: Server;
let url = '';
/** A port nothing listens on (a server's, closed again). */
let closedUrl = '';
/** Requests the server holds without answering (their head or their body), ended when the client goes. */
const held = new Set<ServerResponse>();

function route(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/cookies') {
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; HttpOnly']);
    res.setHeader('X-Twice', ['one', 'two']);
    res.setHeader('Content-Type', ['text/plain', 'text/html']);
    res.end('{}');
  } else if (req.url === '/moved') {
    res.writeHead(302, { Location: '/elsewhere?x=1' });
    res.end();
  } else if (req.url === '/loop') {
    res.writeHead(302, { Location: '/loop' });
    res.end();
  } else if (req.url === '/bad-location') {
    res.writeHead(301, { Location: 'http://[::1' });
    res.end();
  } else if (req.url === '/echo') {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => res.end(JSON.stringify({ method: req.method, rawHeaders: req.rawHeaders, body })));
    return;
  } else if (req.url?.startsWith('/bytes/')) {
    const n = Number(req.url.slice('/bytes/'.length));
    res.end(Buffer.from(Array.from({ length: n }, (_, i) => i % 251)));
  } else if (req.url === '/hang') {
    held.add(res);
    res.on('close', () => held.delete(res));
  } else if (req.url === '/hang-body') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('the start');
    held.add(res);
    res.on('close', () => held.delete(res));
  } else res.end(JSON.stringify({ path: req.url }));
  req.resume();
}

beforeAll(async () => {
  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  closedUrl = `http://127.0.0.1:${(gone.address() as { port: number }).port}`;
  await new Promise<void>((r) => gone.close(() => r()));
  server = createServer(route);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const AsyncFunction = (async () => {}).constructor as new (
  ...args: string[]
) => (...a: unknown[]) => Promise<unknown>;

const SCOPE = ['fetch', 'Headers', 'Request', 'Response', 'url'];

/** The snippet's value with node-fetch 2 in this process, and in the sandbox; `fetch`, `Headers`, `Request`, `Response` and `url` in scope. */
async function both(snippet: string): Promise<[unknown, unknown]> {
  const inNode = await new AsyncFunction(...SCOPE, snippet)(
    nodeFetch2.default,
    nodeFetch2.Headers,
    nodeFetch2.Request,
    nodeFetch2.Response,
    url,
  );
  return [JSON.parse(JSON.stringify(inNode)), await inSandbox(snippet)];
}

async function inSandbox(snippet: string): Promise<unknown> {
  const sb = await load(
    `async function onTrack(event, settings) {
      const url = settings.url;
      console.log(JSON.stringify(await (async () => { ${snippet} })()));
    }`,
    { allowPrivateNetwork: true, settings: { url }, limits: { timeoutMs: 10_000 } },
  );
  const [report] = await sb.invoke([{ type: 'track', event: 'Parity' }]);
  expect(report!.outcome).toEqual({ outcome: 'success' });
  return JSON.parse(report!.logs[0]!);
}

/** A snippet's error as both print it. */
const CAUGHT = `(e) => ({ name: e.name, message: e.message.split(url).join('<url>'), type: e.type })`;

describe('response headers as node-fetch 2 has them', () => {
  it('keeps Set-Cookie values apart, joins other repeated headers as Node does, keeps the first Content-Type', async () => {
    const [node, sandbox] = await both(`
      const res = await fetch(url + '/cookies');
      const raw = res.headers.raw();
      return { raw: { cookies: raw['set-cookie'], twice: raw['x-twice'], type: raw['content-type'] },
        cookie: res.headers.get('Set-Cookie'), twice: res.headers.get('X-Twice'), names: [...res.headers.keys()] };`);
    expect(sandbox).toEqual(node);
    expect((node as { raw: { cookies: string[] } }).raw.cookies).toEqual(['a=1; Path=/', 'b=2; HttpOnly']);
  });
});

describe('header names: the caller’s case on the wire and in raw(), lower-case in iteration', () => {
  it('Headers keeps the case a name was first given, matches any case, and sorts as node-fetch 2 does', async () => {
    const [node, sandbox] = await both(`
      const h = new Headers({ 'X-B': '1', 'a-a': ' 2 ', 'Content-Type': 'x', Zed: 'z' });
      h.append('x-b', '3');
      h.set('CONTENT-type', 'y');
      h.delete('zed');
      h.set('ZED', 'again');
      return { raw: h.raw(), entries: [...h], keys: [...h.keys()], values: [...h.values()], get: h.get('x-B'),
        has: h.has('a-A'), copy: new Headers(h).raw(), pairs: new Headers([['Mixed-Case', 'v']]).raw(),
        arrayValue: new Headers({ 'X-List': ['a', 'b'] }).raw() };`);
    expect(sandbox).toEqual(node);
  });

  // The lines the HTTP client writes itself (Host, Connection, Content-Length) are the host's: undici
  // writes them lower-case, Content-Length last (host-http.ts). Their values must still be node-fetch 2's.
  it('sends the names in the case given, node-fetch 2’s defaults in its case, repeated values as separate lines', async () => {
    const [node, sandbox] = await both(`
      const headers = new Headers({ 'X-Custom-Case': 'a', 'x-lower': 'b', AUTHORIZATION: 'Bearer t' });
      headers.append('x-custom-case', 'second');
      const get = await (await fetch(url + '/echo', { headers })).json();
      const post = await (await fetch(url + '/echo', { method: 'POST', body: 'hi',
        headers: { 'content-length': '2', ACCEPT: 'text/plain', 'User-agent': 'mine' } })).json();
      const form = await (await fetch(url + '/echo', { method: 'PUT', body: new URLSearchParams({ a: '1' }) })).json();
      const own = (h, i, all) => /^(host|connection|content-length)$/i.test(i % 2 ? all[i - 1] : h);
      const length = (r) => r.rawHeaders.find((h, i, all) => i % 2 && /^content-length$/i.test(all[i - 1]));
      const strip = (r) => ({ ...r, length: length(r), rawHeaders: r.rawHeaders.filter((h, i, all) => !own(h, i, all)) });
      return [get, post, form].map(strip);`);
    expect(sandbox).toEqual(node);
    const [get] = node as { rawHeaders: string[] }[];
    expect(get!.rawHeaders.slice(0, 8)).toEqual([
      'X-Custom-Case',
      'a',
      'X-Custom-Case',
      'second',
      'x-lower',
      'b',
      'AUTHORIZATION',
      'Bearer t',
    ]);
  });

  it('refuses bad names and values with node-fetch 2’s TypeErrors, in Headers and in fetch', async () => {
    const [node, sandbox] = await both(`
      const out = [];
      for (const attempt of [
        () => new Headers({ 'X-Injected': 'a\\r\\nSet-Cookie: evil=1' }),
        () => new Headers().append('X-Trailing', 'value\\n'),
        () => new Headers({ 'Bad Name': 'x' }),
        () => new Headers().get(''),
        () => new Headers([['only-one']]),
        () => new Headers(5),
        () => fetch(url + '/x', { headers: { 'X-Injected': 'a\\nb' } }),
      ]) {
        try { await attempt(); out.push('accepted'); } catch (e) { out.push([e.name, e.message]); }
      }
      return out;`);
    expect(sandbox).toEqual(node);
  });
});

describe('requests that cannot be made', () => {
  it('a refused connection, a scheme other than http(s), a relative URL: node-fetch 2’s errors', async () => {
    const [node, sandbox] = await both(`
      const closed = '${closedUrl}';
      const out = [];
      for (const target of [closed + '/x', 'ftp://example.com/', '/relative', 'example.com/path']) {
        out.push(await fetch(target).then(() => 'fetched', (e) => [e.name, e.message.replace(closed, '<closed>'), e.type, e.code, e.errno]));
      }
      return out;`);
    expect(sandbox).toEqual(node);
    expect((node as unknown[][])[0]).toEqual([
      'FetchError',
      `request to <closed>/x failed, reason: connect ECONNREFUSED ${closedUrl.slice('http://'.length)}`,
      'system',
      'ECONNREFUSED',
      'ECONNREFUSED',
    ]);
  });
});

describe('redirects', () => {
  it("with redirect: 'manual', gives the redirect itself with its Location resolved to an absolute URL", async () => {
    const [node, sandbox] = await both(`
      const res = await fetch(url + '/moved', { redirect: 'manual' });
      return { status: res.status, location: res.headers.get('location').replace(url, '<url>'),
        raw: res.headers.raw().location.map((l) => l.replace(url, '<url>')), redirected: res.redirected,
        url: res.url.replace(url, '') };`);
    expect(sandbox).toEqual(node);
    expect((node as { location: string }).location).toBe('<url>/elsewhere?x=1');
  });

  it("a redirect loop: 'manual' answers its first hop, 'follow' stops at node-fetch 2’s limit with its error", async () => {
    const [node, sandbox] = await both(`
      const manual = await fetch(url + '/loop', { redirect: 'manual' });
      const follow = await fetch(url + '/loop').then(() => 'followed', ${CAUGHT});
      const error = await fetch(url + '/moved', { redirect: 'error' }).then(() => 'followed', ${CAUGHT});
      const invalid = await fetch(url + '/bad-location').then(() => 'followed', ${CAUGHT});
      const invalidManual = await fetch(url + '/bad-location', { redirect: 'manual' });
      return { manual: [manual.status, manual.headers.get('location').replace(url, '<url>')], follow, error, invalid,
        invalidManual: [invalidManual.status, invalidManual.headers.get('location')] };`);
    expect(sandbox).toEqual(node);
    expect((node as { follow: { type: string } }).follow.type).toBe('max-redirect');
  });
});

describe('the timeout option', () => {
  it('rejects with a request-timeout FetchError when the head does not come; 0, NaN and "" are no timeout', async () => {
    const [node, sandbox] = await both(`
      const out = {};
      for (const [name, timeout] of [['ms', 50], ['negative', -5], ['fraction', 0.5], ['string', 'soon']]) {
        out[name] = await fetch(url + '/hang', { timeout }).then((r) => r.status, ${CAUGHT});
      }
      for (const [name, timeout] of [['zero', 0], ['nan', NaN], ['empty', ''], ['null', null]]) {
        out[name] = await fetch(url + '/fine', { timeout }).then((r) => r.status, ${CAUGHT});
      }
      const viaRequest = new Request(url + '/hang', { timeout: 40 });
      out.request = [viaRequest.timeout, await fetch(viaRequest).then((r) => r.status, ${CAUGHT})];
      return out;`);
    expect(sandbox).toEqual(node);
    expect((node as { ms: unknown }).ms).toEqual({
      name: 'FetchError',
      message: 'network timeout at: <url>/hang',
      type: 'request-timeout',
    });
  });

  it('rejects reading a body that does not come within the timeout with a body-timeout FetchError', async () => {
    const [node, sandbox] = await both(`
      const res = await fetch(url + '/hang-body', { timeout: 1500 });
      return { status: res.status, text: await res.text().then((t) => t, ${CAUGHT}) };`);
    expect(sandbox).toEqual(node);
    expect((node as { text: { type: string } }).text.type).toBe('body-timeout');
  });
});

describe('res.body, a stream of Buffer chunks', () => {
  it('reads by async iteration, by data and end events, and by pipe, each giving the body’s bytes', async () => {
    const [node, sandbox] = await both(`
      const iterated = [];
      for await (const chunk of (await fetch(url + '/bytes/40000')).body) iterated.push(chunk);
      const events = await new Promise((resolve, reject) => {
        fetch(url + '/bytes/3000').then((res) => {
          const chunks = [];
          res.body.on('data', (c) => chunks.push(c)).on('error', reject).on('end', () => resolve(chunks));
        }, reject);
      });
      // A writable as small as Node's pipe() accepts: an emitter with write and end.
      const piped = await new Promise((resolve, reject) => {
        const chunks = [];
        const listeners = {};
        const sink = {
          on(e, f) { (listeners[e] ??= []).push(f); return this; },
          once(e, f) { return this.on(e, f); },
          prependListener(e, f) { return this.on(e, f); },
          removeListener() { return this; },
          emit(e, ...a) { for (const f of listeners[e] ?? []) f(...a); return true; },
          write(c) { chunks.push(c); return true; },
          end() { resolve(chunks); },
        };
        fetch(url + '/bytes/20000').then((res) => res.body.pipe(sink)).catch(reject);
      });
      const show = (chunks) => ({ buffers: chunks.every((c) => Buffer.isBuffer(c)),
        length: Buffer.concat(chunks).length, sum: [...Buffer.concat(chunks)].reduce((a, b) => a + b, 0) });
      return { iterated: show(iterated), events: show(events), piped: show(piped),
        empty: (await fetch(url + '/bytes/0')).body !== null, made: new Response().body };`);
    expect(sandbox).toEqual(node);
    expect((node as { iterated: { length: number } }).iterated.length).toBe(40_000);
  });

  it('a body read as text is marked used; a second read rejects with node-fetch’s TypeError', async () => {
    const [node, sandbox] = await both(`
      const res = await fetch(url + '/fine');
      const text = await res.text();
      const second = await res.json().then(() => 'read twice', (e) => [e.name, e.message.replace(url, '<url>')]);
      return { text, used: res.bodyUsed, second };`);
    expect(sandbox).toEqual(node);
  });
});

describe('class names user code sees', () => {
  it('Headers, Request and Response are named as node-fetch 2 names them', async () => {
    const [node, sandbox] = await both(`
      const all = [new Headers(), new Request(url), new Response('x')];
      return all.map((v) => [v.constructor.name, Object.prototype.toString.call(v)]).concat([[Headers.name, Request.name, Response.name]]);`);
    expect(sandbox).toEqual(node);
  });
});
