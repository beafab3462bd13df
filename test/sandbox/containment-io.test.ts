// Everything an invocation starts ends with it or is bounded: timers and requests per invocation and per
// isolate, cancelled or aborted when the invocation ends and when its isolate is killed; traces bounded;
// idle keep-alive sockets pooled per destination host, a bounded few.

import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BOUNDS } from '../../sandbox/bounds.js';
import { expectBenignDelivered, hostileSource, hostTimers, rssMb } from '../helpers/containment.js';
import { sandboxes } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

const { load } = sandboxes();

/** A destination that records paths, counts open connections, and holds /slow requests until told. */
let server: Server;
let url = '';
const paths: string[] = [];
const sockets = new Set<Socket>();
let connections = 0;
let maxOpen = 0;
const held: ServerResponse[] = [];
let closedEarly = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    paths.push(req.url ?? '');
    if (req.url?.startsWith('/delay')) {
      const timer = setTimeout(() => res.end('late'), 200);
      res.on('close', () => {
        if (!res.writableEnded) closedEarly++;
        clearTimeout(timer);
      });
      return;
    }
    if (req.url === '/status') {
      res.end(JSON.stringify({ held: held.length, closedEarly }));
      return;
    }
    if (req.url?.startsWith('/slow')) {
      held.push(res);
      res.on('close', () => {
        if (!res.writableEnded) closedEarly++;
      });
      return;
    }
    res.end('ok');
  });
  server.on('connection', (socket) => {
    connections++;
    sockets.add(socket);
    maxOpen = Math.max(maxOpen, sockets.size);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
beforeEach(() => {
  paths.length = 0;
  for (const res of held.splice(0)) res.end('late');
  connections = 0;
  maxOpen = sockets.size;
  closedEarly = 0;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((r) => server.close(() => r()));
});

const local = { allowPrivateNetwork: true } as const;

describe('timers', () => {
  it('150,000 long setTimeouts per invocation: a RangeError past the per-invocation bound, no host timers pile up', async () => {
    const baseline = hostTimers();
    const before = rssMb();
    const sb = await load(
      hostileSource(`
        let set = 0;
        try { for (let i = 0; i < 150000; i++) { setTimeout(() => {}, 1e9); set++; } }
        catch (e) { console.log(e.name, set); }`),
    );
    for (let round = 0; round < 5; round++) {
      const [report] = await sb.invoke([{ type: 'track' }]);
      expect(report!.logs).toEqual([`RangeError ${BOUNDS.timersPerInvocation}`]);
      // The invocation ended: its timers went with it.
      expect(hostTimers() - baseline).toBeLessThan(20);
    }
    expect(rssMb() - before).toBeLessThan(200);
    await expectBenignDelivered(sb);
  });

  it('concurrent invocations share the per-isolate bound', async () => {
    const sb = await load(
      hostileSource(`
        let set = 0;
        try { for (let i = 0; i < 2000; i++) { setTimeout(() => {}, 1e9); set++; } }
        catch (e) { console.log(e.message.includes('one function') ? 'isolate' : 'invocation', set); }
        await new Promise((r) => setTimeout(r, 50));`),
    );
    const reports = await sb.invoke(Array.from({ length: 8 }, () => ({ type: 'track' })));
    const total = reports.reduce((n, r) => n + Number(r.logs[0]!.split(' ')[1]), 0);
    expect(total).toBe(BOUNDS.timersPerIsolate);
    expect(reports.some((r) => r.logs[0]!.startsWith('isolate'))).toBe(true);
    await expectBenignDelivered(sb);
  });

  it('setTimeout then clearTimeout in a loop leaves no host timers behind', async () => {
    const baseline = hostTimers();
    const sb = await load(
      hostileSource(`
        for (let i = 0; i < 3000; i++) clearTimeout(setTimeout(() => {}, 1e9));
        console.log(await new Promise((r) => setTimeout(() => r('still works'), 1)));`),
      { limits: { timeoutMs: 30_000 } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    expect(report!.logs).toEqual(['still works']);
    await waitFor('cancelled host timers to be gone', () => hostTimers() - baseline < 20);
  });

  it('a timer outliving its invocation never runs', async () => {
    const sb = await load(
      `async function onTrack(event, settings) {
        if (event.event === 'first') { setTimeout(() => fetch(settings.url + '/late'), 100); return; }
        await new Promise((r) => setTimeout(r, 300));
        await fetch(settings.url + '/after');
      }`,
      { ...local, settings: { url } },
    );
    await sb.invoke([{ type: 'track', event: 'first' }]);
    await sb.invoke([{ type: 'track', event: 'second' }]);
    // /after was sent 300 ms after the first invocation ended: the 100 ms timer would have fired before it.
    expect(paths).toEqual(['/after']);
  });

  it('killing an isolate clears its timers and aborts its requests', async () => {
    const baseline = hostTimers();
    const sb = await load(
      hostileSource(`
        for (let i = 0; i < 500; i++) setTimeout(() => {}, 1e9);
        fetch(settings.url + '/slow/kill').catch(() => {});
        await new Promise((r) => setTimeout(r, 50));
        for (;;) {}`),
      { ...local, settings: { url }, limits: { timeoutMs: 500 } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toMatchObject({ errorType: 'Timeout' });
    await waitFor('the held request to be aborted', () => closedEarly === 1);
    expect(hostTimers() - baseline).toBeLessThan(20);
    await expectBenignDelivered(sb);
  });
});

describe('requests', () => {
  it('3,000 refused fetches with 1 MB URLs: each throws in user code, nothing of the URLs is kept', async () => {
    const before = rssMb();
    const sb = await load(
      hostileSource(`
        const long = 'http://169.254.169.254/' + 'a'.repeat(1 << 20);
        const errors = new Set();
        for (let i = 0; i < 3000; i++) { try { await fetch(long); } catch (e) { errors.add(e.name + ': ' + e.message); } }
        console.log([...errors].join());`),
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    // The URL parser refuses it (a TypeError, as node-fetch's for a URL it cannot parse) before it crosses.
    expect(report!.logs).toEqual([`TypeError: Invalid URL: longer than ${BOUNDS.urlChars} characters`]);
    expect(JSON.stringify(report).length).toBeLessThan(100_000);
    expect(rssMb() - before).toBeLessThan(200);
    await expectBenignDelivered(sb);
  });

  it('a URL the parser takes but too long to request is a FetchError before it crosses', async () => {
    const sb = await load(
      hostileSource(`
        try { await fetch('http://169.254.169.254/' + 'a'.repeat(${BOUNDS.fetchUrlChars})); } catch (e) { console.log(e.name, e.type, e.message); }`),
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual([
      `FetchError max-size a request URL can be at most ${BOUNDS.fetchUrlChars} characters`,
    ]);
    expect(report!.requests).toEqual([]);
  });

  it('3,000 refused fetches: the count per invocation is bounded, traces are capped and each is short', async () => {
    const sb = await load(
      hostileSource(`
        const target = 'http://169.254.169.254/' + 'b'.repeat(10000);
        const errors = {};
        for (let i = 0; i < 3000; i++) {
          try { await fetch(target, { headers: { 'x-long': 'v'.repeat(5000) } }); }
          catch (e) { const k = e.message.includes('at most') ? 'count' : e.message.includes('refused') ? 'refused' : e.message; errors[k] = (errors[k] || 0) + 1; }
        }
        console.log(JSON.stringify(errors));`),
      { limits: { timeoutMs: 30_000 } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(JSON.parse(report!.logs[0]!)).toEqual({
      refused: BOUNDS.fetchesPerInvocation,
      count: 3000 - BOUNDS.fetchesPerInvocation,
    });
    expect(report!.requests).toHaveLength(BOUNDS.tracesPerInvocation);
    expect(report!.requestsNotTraced).toBe(3000 - BOUNDS.tracesPerInvocation);
    for (const t of report!.requests) {
      expect(t.url.length).toBeLessThanOrEqual(BOUNDS.traceUrlChars);
      expect(t.requestHeaders['x-long']!.length).toBeLessThanOrEqual(BOUNDS.traceHeaderChars);
    }
    await expectBenignDelivered(sb);
  });

  it('3,000 concurrent fetches to a slow server: a bounded few sockets, all aborted when the invocation times out', async () => {
    const sb = await load(
      hostileSource(`
        await Promise.all(Array.from({ length: 3000 }, (_, i) => fetch(settings.url + '/slow/' + i)));`),
      { ...local, settings: { url }, limits: { timeoutMs: 1_000 } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toMatchObject({ errorType: 'Timeout' });
    expect(maxOpen).toBeLessThanOrEqual(BOUNDS.fetchesOnNetworkPerIsolate);
    expect(paths.length).toBeLessThanOrEqual(BOUNDS.fetchesOnNetworkPerIsolate);
    await waitFor('the held requests to be aborted', () => closedEarly === paths.length && closedEarly > 0);
    await waitFor('their sockets to close', () => sockets.size === 0);
    await expectBenignDelivered(sb);
  });

  it('a request still in flight when its invocation returns is aborted, and what would follow it never runs', async () => {
    const sb = await load(
      `async function onTrack(event, settings) {
        if (event.event === 'first') { fetch(settings.url + '/delay/bg').then(() => fetch(settings.url + '/late')); return; }
        await new Promise((r) => setTimeout(r, 400));
        await fetch(settings.url + '/after');
      }`,
      { ...local, settings: { url } },
    );
    await sb.invoke([{ type: 'track', event: 'first' }]);
    await sb.invoke([{ type: 'track', event: 'second' }]);
    // /delay answers after 200 ms, /after went out 400 ms after the first invocation ended: had the
    // background request gone on, /late would be here. It was aborted, before or after reaching the server.
    expect(paths.filter((p) => p !== '/delay/bg')).toEqual(['/after']);
    if (paths.includes('/delay/bg'))
      await waitFor('the background request to be closed', () => closedEarly === 1);
  });

  it('in one micro-batch, an invocation that returned has its request aborted and its timer cancelled while its neighbour still runs', async () => {
    const sb = await load(
      `const status = async (url) => (await fetch(url + '/status')).json();
      async function until(url, test) {
        for (let i = 0; i < 500; i++) {
          if (test(await status(url))) return true;
          await new Promise((r) => setTimeout(r, 20));
        }
        return false;
      }
      async function onTrack(event, settings) {
        if (event.event === 'first') {
          fetch(settings.url + '/slow/bg').catch(() => {});
          await until(settings.url, (s) => s.held === 1);
          setTimeout(() => fetch(settings.url + '/late'), 100);
          return;
        }
        // The first invocation's request ends while this one is still running, not when the micro-batch does.
        console.log('closed while running', await until(settings.url, (s) => s.closedEarly === 1));
        await new Promise((r) => setTimeout(r, 300));
        await fetch(settings.url + '/after');
      }`,
      { ...local, settings: { url }, limits: { timeoutMs: 30_000 } },
    );
    const [first, second] = await sb.invoke([
      { type: 'track', event: 'first' },
      { type: 'track', event: 'second' },
    ]);
    expect(first!.outcome).toEqual({ outcome: 'success' });
    expect(second!.outcome).toEqual({ outcome: 'success' });
    expect(second!.logs).toEqual(['closed while running true']);
    // The 100 ms timer would have fired before /after went out, 300 ms after the request was closed.
    expect(paths.filter((p) => p !== '/status')).toEqual(['/slow/bg', '/after']);
  });

  it('sequential fetches reuse pooled keep-alive sockets, across invocations', async () => {
    const sb = await load(
      `async function onTrack(event, settings) {
        for (let i = 0; i < 20; i++) await (await fetch(settings.url + '/seq/' + i)).text();
      }`,
      { ...local, settings: { url } },
    );
    for (let i = 0; i < 3; i++) {
      const [report] = await sb.invoke([{ type: 'track' }]);
      expect(report!.outcome).toEqual({ outcome: 'success' });
    }
    expect(paths).toHaveLength(60);
    expect(connections).toBeLessThanOrEqual(2);
  });
});
