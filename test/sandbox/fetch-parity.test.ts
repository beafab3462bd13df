// The sandbox's fetch against node-fetch itself: each case runs the same snippet in the sandbox and in
// plain Node with node-fetch, against the same server on 127.0.0.1, and the results must be equal.

import { createServer, type Server } from 'node:http';
import nodeFetch, { Headers as NodeFetchHeaders } from 'node-fetch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();
let server: Server;
let url = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    if (req.url === '/cookies') {
      res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; HttpOnly']);
      res.setHeader('X-Twice', ['one', 'two']);
      res.end('{}');
      return;
    }
    if (req.url === '/moved') {
      res.writeHead(302, { Location: '/elsewhere?x=1' });
      res.end();
      return;
    }
    res.end(JSON.stringify({ path: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const AsyncFunction = (async () => {}).constructor as new (
  ...args: string[]
) => (...a: unknown[]) => Promise<unknown>;

/** The snippet's value with node-fetch in this process, and in the sandbox; `fetch`, `Headers` and `url` in scope. */
async function both(snippet: string): Promise<[unknown, unknown]> {
  const inNode = await new AsyncFunction('fetch', 'Headers', 'url', snippet)(
    nodeFetch,
    NodeFetchHeaders,
    url,
  );
  const sb = await load(
    `async function onTrack(event, settings) {
      const url = settings.url;
      console.log(JSON.stringify(await (async () => { ${snippet} })()));
    }`,
    { allowPrivateNetwork: true, settings: { url } },
  );
  const [report] = await sb.invoke([{ type: 'track', event: 'Parity' }]);
  expect(report!.outcome).toEqual({ outcome: 'success' });
  return [JSON.parse(JSON.stringify(inNode)), JSON.parse(report!.logs[0]!)];
}

describe('fetch as node-fetch has it', () => {
  it('keeps repeated response headers apart in raw() and joins them in get()', async () => {
    const [node, sandbox] = await both(`
      const res = await fetch(url + '/cookies');
      const raw = res.headers.raw();
      return { raw: { cookies: raw['set-cookie'], twice: raw['x-twice'] }, cookie: res.headers.get('set-cookie'),
        twice: res.headers.get('X-Twice') };`);
    expect(sandbox).toEqual(node);
    expect((node as { raw: { cookies: string[] } }).raw.cookies).toEqual(['a=1; Path=/', 'b=2; HttpOnly']);
  });

  it('refuses a header value with a newline, in Headers and in fetch, with the same TypeError', async () => {
    const [node, sandbox] = await both(`
      const out = [];
      for (const attempt of [
        () => new Headers({ 'X-Injected': 'a\\r\\nSet-Cookie: evil=1' }),
        () => new Headers().append('X-Trailing', 'value\\n'),
        () => fetch(url + '/x', { headers: { 'X-Injected': 'a\\nb' } }),
      ]) {
        try { await attempt(); out.push('accepted'); } catch (e) { out.push([e.name, e.message, e.code]); }
      }
      return out;`);
    expect(sandbox).toEqual(node);
    expect(node).toEqual([
      ['TypeError', 'Invalid character in header content ["X-Injected"]', 'ERR_INVALID_CHAR'],
      ['TypeError', 'Invalid character in header content ["X-Trailing"]', 'ERR_INVALID_CHAR'],
      ['TypeError', 'Invalid character in header content ["X-Injected"]', 'ERR_INVALID_CHAR'],
    ]);
  });

  it("with redirect: 'manual', gives the redirect itself: status, Location and url as node-fetch does", async () => {
    const [node, sandbox] = await both(`
      const res = await fetch(url + '/moved', { redirect: 'manual' });
      return { status: res.status, location: res.headers.get('location'), redirected: res.redirected,
        url: res.url.replace(url, '') };`);
    expect(sandbox).toEqual(node);
  });
});
