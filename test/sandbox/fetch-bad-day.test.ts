// fetch's newer surfaces on a bad day: response body streams never read, read twice, read with listeners
// that throw or pile up; `timeout` values Node would take oddly; 10,000 header names in odd cases. Each
// ends within its invocation's bounds, and the function's next invocation runs as before.

import { createServer, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BOUNDS } from '../../sandbox/bounds.js';
import { expectBenignDelivered, hostileSource, rssMb } from '../helpers/containment.js';
import { sandboxes } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

const { load } = sandboxes();
let server: Server;
let url = '';
const paths: string[] = [];
const held = new Set<ServerResponse>();
let closedEarly = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    paths.push(req.url ?? '');
    req.resume();
    if (req.url?.startsWith('/bytes/')) {
      res.end(Buffer.alloc(Number(req.url.slice('/bytes/'.length)), 'x'));
    } else if (req.url === '/hang') {
      held.add(res);
      res.on('close', () => {
        held.delete(res);
        if (!res.writableEnded) closedEarly++;
      });
    } else res.end('fine');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
beforeEach(() => {
  paths.length = 0;
});
afterAll(async () => {
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const local = { allowPrivateNetwork: true } as const;

describe('response body streams', () => {
  it('300 bodies of 100 kB whose stream is looked at and never read: the invocation ends, nothing stays', async () => {
    const before = rssMb();
    const sb = await load(
      hostileSource(`
        let streams = 0;
        for (let i = 0; i < 300; i++) {
          const res = await fetch(settings.url + '/bytes/100000');
          if (res.body.readable) streams++;
        }
        console.log(streams);`),
      { ...local, settings: { url }, limits: { timeoutMs: 20_000 } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    expect(report!.logs).toEqual(['300']);
    expect(rssMb() - before).toBeLessThan(200);
    await expectBenignDelivered(sb);
  });

  it('a body read twice, every way round: node-fetch’s "body used already" TypeError, never a hang', async () => {
    const sb = await load(
      hostileSource(`
        const at = settings.url + '/fine';
        const errorOf = (p) => p.then(() => 'read', (e) => e.name + ': ' + e.message.replace(settings.url, ''));
        const drain = async (body) => { let n = 0; for await (const c of body) n += c.length; return n; };
        let res = await fetch(at);
        console.log('iterated', await drain(res.body), res.bodyUsed);
        console.log('iterated again', await errorOf(drain(res.body)));
        console.log('then text', await errorOf(res.text()));
        res = await fetch(at);
        await res.text();
        console.log('stream after text', await new Promise((resolve) => res.body.on('error', (e) => resolve(e.message.replace(settings.url, ''))).on('data', () => resolve('data'))));
        console.log('iterated after text', await errorOf(drain(res.body)));
        res = await fetch(at);
        const first = drain(res.body);
        console.log('two readers', await errorOf(drain(res.body)), await first);
        res = await fetch(at);
        res.body.destroy();
        console.log('destroyed', await drain(res.body), res.bodyUsed);`),
      { ...local, settings: { url } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    expect(report!.logs).toEqual([
      'iterated 4 true',
      'iterated again TypeError: body used already for: /fine',
      'then text TypeError: body used already for: /fine',
      'stream after text body used already for: /fine',
      'iterated after text TypeError: body used already for: /fine',
      'two readers TypeError: the body stream is being read already 4',
      'destroyed 0 false',
    ]);
    await expectBenignDelivered(sb);
  });

  it('a listener that throws is an uncaught exception of the stream, logged; listeners are bounded per event', async () => {
    const sb = await load(
      hostileSource(`
        let res = await fetch(settings.url + '/bytes/50000');
        await new Promise((resolve) => {
          res.body.on('data', () => { throw new Error('listener broke'); }).on('close', resolve);
        });
        res = await fetch(settings.url + '/fine');
        try { for (let i = 0; i < 100000; i++) res.body.on('end', () => {}); } catch (e) { console.log(e.message); }
        console.log(res.body.listenerCount('end'));`),
      { ...local, settings: { url } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    expect(report!.logs[0]).toMatch(
      /^error: Uncaught exception in a body stream 'data' listener: Error: listener broke/,
    );
    expect(report!.logs.slice(1)).toEqual(["a body stream can have at most 1000 'end' listeners", '1000']);
    await expectBenignDelivered(sb);
  });

  it('a stream kept from one invocation and read in the next logs into the one that reads it', async () => {
    const sb = await load(
      `let kept;
      async function onTrack(event, settings) {
        if (event.event === 'first') { kept = (await fetch(settings.url + '/bytes/10')).body; return; }
        await new Promise((resolve) => kept.on('data', (c) => console.log('chunk', c.length)).on('end', resolve));
      }`,
      { ...local, settings: { url } },
    );
    const [first] = await sb.invoke([{ type: 'track', event: 'first' }]);
    const [second] = await sb.invoke([{ type: 'track', event: 'second' }]);
    expect(first!.logs).toEqual([]);
    expect(second!.logs).toEqual(['chunk 10']);
  });
});

describe('the timeout option', () => {
  it('a timeout past Node’s timer range is no earlier limit than the request’s own (Node would fire at once)', async () => {
    const sb = await load(
      hostileSource(`
        for (const timeout of [1e12, Infinity, 2 ** 31]) console.log((await fetch(settings.url + '/fine', { timeout })).status);`),
      { ...local, settings: { url } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual(['200', '200', '200']);
  });

  it('a huge timeout on a destination that never answers ends with the invocation’s deadline, the request aborted', async () => {
    closedEarly = 0;
    const sb = await load(hostileSource(`await fetch(settings.url + '/hang', { timeout: 1e12 });`), {
      ...local,
      settings: { url },
      limits: { timeoutMs: 300 },
    });
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toMatchObject({ errorType: 'Timeout' });
    await waitFor('the held request to be aborted', () => closedEarly === 1);
    await expectBenignDelivered(sb);
  });
});

describe('header names', () => {
  it('10,000 names in odd cases: one entry per name whatever its case, and a request with them is refused before it crosses', async () => {
    const sb = await load(
      hostileSource(`
        const h = new Headers();
        for (let i = 0; i < 10000; i++) h.append((i % 2 ? 'X-Name-' : 'x-NAME-') + i, 'a');
        for (let i = 0; i < 10000; i++) h.append('X-NAME-' + i, 'b');
        const raw = h.raw();
        console.log([...h.keys()].length, Object.keys(raw).length, raw['X-Name-1'].join(), raw['x-NAME-0'].join(), h.get('x-name-9999'));
        try { await fetch(settings.url + '/fine', { headers: h }); } catch (e) { console.log(e.name, e.type, e.message); }
        const many = new Headers();
        for (let i = 0; i < 10000; i++) many.append(i % 2 ? 'X-Same' : 'x-same', String(i));
        try { await fetch(settings.url + '/fine', { headers: many }); } catch (e) { console.log(e.name, e.type, e.message); }`),
      { ...local, settings: { url } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    const refused = `FetchError max-size a request can have at most ${BOUNDS.fetchHeaderCount} headers`;
    expect(report!.logs).toEqual(['10000 10000 a,b a,b a, b', refused, refused]);
    expect(paths).toEqual([]);
    await expectBenignDelivered(sb);
  });
});
