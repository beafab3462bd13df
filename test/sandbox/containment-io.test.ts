// Everything an invocation starts ends with it or is bounded: timers and requests per invocation and per
// isolate, cancelled or aborted when the invocation ends and when its isolate is killed; traces bounded;
// idle keep-alive sockets pooled per destination host, a bounded few.

import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BOUNDS } from '../../sandbox/bounds.js';
import type { FetchRequestWire, FetchResultWire, HostFetcher } from '../../sandbox/host-fetch.js';
import { IsolateIo, type KeptRequest, type TraceBudget } from '../../sandbox/host-io.js';
import { loadSupervisedFunction } from '../../sandbox/index.js';
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

  it('a method of a megabyte is a FetchError before it crosses; one at the bound goes on to the egress check', async () => {
    const sb = await load(
      hostileSource(`
        for (const method of ['p'.repeat(1 << 20), 'M'.repeat(${BOUNDS.fetchMethodChars})]) {
          try { await fetch('http://169.254.169.254/', { method }); } catch (e) { console.log(e.name, e.type, e.message.slice(0, 60)); }
        }`),
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs[0]).toBe(
      `FetchError max-size a request method can be at most ${BOUNDS.fetchMethodChars} characters`,
    );
    // At the bound the request crossed, and the host refused it for its address, not its method.
    expect(report!.logs[1]).toMatch(/^FetchError \S+ .*169\.254\.169\.254/);
    expect(report!.requests).toHaveLength(1);
    expect(report!.requests[0]!.method).toMatch(/^M{16}/);
    await expectBenignDelivered(sb);
  });

  it('3,000 refused fetches: the count per invocation is bounded, traces are capped in number and bytes and each is short', async () => {
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
    // Each request keeps a 10,023-character URL and a 5,006-character header (2 bytes a character, at
    // least): the invocation's trace bytes run out before its count of traces does.
    const traced = report!.requests.length;
    expect(traced).toBeGreaterThan(0);
    expect(traced * 2 * (10_023 + 5_006)).toBeLessThanOrEqual(BOUNDS.traceBytesPerInvocation);
    expect(traced + report!.requestsNotTraced!).toBe(3000);
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

describe('request traces', () => {
  /** A request at the request bounds: a URL of fetchUrlChars, 60 headers of ~1,000 characters. */
  const HUGE_HEADERS = 60;
  const hugeRequest = `
    const target = 'http://169.254.169.254/' + 'u'.repeat(${BOUNDS.fetchUrlChars} - 23);
    const headers = {};
    for (let h = 0; h < ${HUGE_HEADERS}; h++) headers['x-h' + String(h).padStart(3, '0')] = String(h).padStart(1000, 'v');`;
  /** Characters of one such request the host keeps raw (its error, which repeats the URL, left out). */
  const hugeChars = BOUNDS.fetchUrlChars + HUGE_HEADERS * (6 + 1000) + 'GET'.length;

  it('64 concurrent invocations of 100 requests with huge URLs and headers: the host keeps traces within its byte budgets, the rest counted', async () => {
    const invocations = 64;
    const sb = await load(
      hostileSource(
        `
        for (let i = 0; i < 100; i++) await fetch(target, { headers }).catch(() => {});
        // Every invocation holds its traces until all have made their requests: they are all kept at once.
        arrived++;
        while (arrived < ${invocations}) await new Promise((r) => setTimeout(r, 5));
        throw new Error('gave up');`,
        `${hugeRequest}\nlet arrived = 0;`,
      ),
      { limits: { timeoutMs: 60_000 } },
    );
    const reports = await sb.invoke(Array.from({ length: invocations }, () => ({ type: 'track' as const })));
    let traced = 0;
    for (const report of reports) {
      // A failure shows its traces: each report says how many of its requests were not traced.
      expect(report.outcome).toMatchObject({ outcome: 'discard', message: 'gave up' });
      expect(report.requests.length + (report.requestsNotTraced ?? 0)).toBe(100);
      expect(report.requests.length * 2 * hugeChars).toBeLessThanOrEqual(BOUNDS.traceBytesPerInvocation);
      for (const t of report.requests) {
        expect(t.url.length).toBeLessThanOrEqual(BOUNDS.traceUrlChars);
        expect(Object.keys(t.requestHeaders)).toHaveLength(HUGE_HEADERS);
      }
      traced += report.requests.length;
    }
    // All of them at once, within the isolate's budget: most were counted, not kept (6,400 requests of
    // ~77,000 characters kept raw would be ~1 GB of the host's heap).
    expect(traced).toBeGreaterThan(0);
    expect(traced * 2 * hugeChars).toBeLessThanOrEqual(BOUNDS.traceBytesPerIsolate);
    // The budget is given back as the reports take the traces: an invocation alone afterwards keeps as
    // many as its own budget holds, and so does the next (nothing of the batch's traces is still counted).
    const [alone] = await sb.invoke([{ type: 'track' }]);
    const [again] = await sb.invoke([{ type: 'track' }]);
    expect(alone!.requests.length).toBeGreaterThan(0);
    expect(alone!.requests.length * 2 * hugeChars).toBeLessThanOrEqual(BOUNDS.traceBytesPerInvocation);
    expect(again!.requests).toHaveLength(alone!.requests.length);
    await expectBenignDelivered(sb);
  }, 120_000);

  it('the drill, in a sandbox process: 64 concurrent invocations of 100 huge requests each, twice; the process lives, every report counts what it did not trace', async () => {
    const exits: string[] = [];
    const sb = await loadSupervisedFunction(
      hostileSource(
        `
        for (let i = 0; i < 100; i++) await fetch(target, { headers }).catch(() => {});
        throw new Error('gave up');`,
        hugeRequest,
      ),
      { limits: { timeoutMs: 60_000 } },
      { onProcessExit: (reason) => exits.push(reason) },
    );
    try {
      for (let round = 0; round < 2; round++) {
        const reports = await sb.invoke(Array.from({ length: 64 }, () => ({ type: 'track' as const })));
        for (const report of reports) {
          expect(report.outcome).toMatchObject({ outcome: 'discard', message: 'gave up' });
          expect(report.requests.length + (report.requestsNotTraced ?? 0)).toBe(100);
        }
      }
      // A call's traces are all kept until its reports are made: 6,400 requests of ~77,000 characters
      // kept raw were ~500 MB, and the sandbox process's 256 MiB heap ran out.
      expect(exits).toEqual([]);
      expect(sb.rebuilds).toBe(0);
    } finally {
      sb.dispose();
    }
  }, 300_000);

  it("an ordinary function's traces are whole: 100 requests each in 16 concurrent invocations, every one traced as made", async () => {
    const sb = await load(
      `async function onTrack(event, settings) {
        await Promise.all(Array.from({ length: 100 }, (_, i) =>
          fetch(settings.url + '/ordinary/' + event.properties.n + '/' + i + '?q=' + 'x'.repeat(200), {
            method: i % 2 ? 'POST' : 'GET',
            headers: { 'content-type': 'application/json', 'x-request': String(i) },
            ...(i % 2 ? { body: '{}' } : {}),
          }),
        ));
        throw new Error('failed after 100');
      }`,
      { ...local, settings: { url }, limits: { timeoutMs: 60_000 } },
    );
    const reports = await sb.invoke(
      Array.from({ length: 16 }, (_, n) => ({ type: 'track' as const, properties: { n } })),
    );
    for (const [n, report] of reports.entries()) {
      expect(report.requestsNotTraced).toBeUndefined();
      expect(report.requests).toHaveLength(100);
      const byPath = new Map(report.requests.map((t) => [new URL(t.url).pathname, t]));
      for (let i = 0; i < 100; i++) {
        expect(byPath.get(`/ordinary/${n}/${i}`)).toMatchObject({
          method: i % 2 ? 'POST' : 'GET',
          url: `${url}/ordinary/${n}/${i}?q=${'x'.repeat(200)}`,
          status: 200,
          requestHeaders: { 'content-type': 'application/json', 'x-request': String(i) },
        });
      }
    }
  }, 120_000);

  describe("the host's own count", () => {
    /** A fetcher that answers every request at once, or when `release` is called. */
    function stubFetcher(hold = false) {
      const waiting: Array<() => void> = [];
      const fetcher = {
        fetch: async (req: FetchRequestWire): Promise<FetchResultWire> => {
          if (hold) await new Promise<void>((r) => waiting.push(r));
          return { status: 200, statusText: 'OK', url: req.url, redirected: false, headers: [], body: '' };
        },
      } as unknown as HostFetcher;
      return {
        fetcher,
        release: () => {
          for (const wake of waiting.splice(0)) wake();
        },
      };
    }
    const urls = Array.from(
      { length: 100 },
      (_, i) => `https://example.com/${i}/${'u'.repeat(BOUNDS.fetchUrlChars - 30)}`,
    );
    const hugeHeaders = Array.from({ length: 60 }, (_, h): [string, string] => [`x-h${h}`, 'v'.repeat(1000)]);
    const huge = (i: number): FetchRequestWire => ({
      method: 'POST',
      url: urls[i]!,
      headers: hugeHeaders,
      body: null,
      redirect: 'follow',
    });
    /** What the kept requests hold: their strings, 2 bytes a character at most. */
    const stringBytes = (kept: readonly KeptRequest[]) =>
      2 *
      kept.reduce(
        (n, k) =>
          n + k.method.length + k.url.length + k.headers.reduce((m, [a, b]) => m + a.length + b.length, 0),
        0,
      );

    it('128 invocations of 100 huge requests each: kept bytes stay within both budgets, kept whole, the rest counted', async () => {
      const budget: TraceBudget = { bytes: 0 };
      const io = new IsolateIo(stubFetcher().fetcher, budget);
      const ids = Array.from({ length: 128 }, (_, i) => i + 1);
      io.begin(ids);
      let most = 0;
      await Promise.all(
        ids.map(async (id) => {
          for (let i = 0; i < 100; i++) {
            await io.fetch(id, huge(i));
            most = Math.max(most, budget.bytes);
          }
        }),
      );
      expect(most).toBeLessThanOrEqual(BOUNDS.traceBytesPerIsolate);
      const ended = io.end(ids)!;
      let kept = 0;
      let counted = 0;
      for (const id of ids) {
        const t = ended.get(id) ?? { requests: [], untraced: 0, bytes: 0 };
        expect(t.requests.length + t.untraced).toBe(100);
        expect(stringBytes(t.requests)).toBeLessThanOrEqual(t.bytes);
        expect(t.bytes).toBeLessThanOrEqual(BOUNDS.traceBytesPerInvocation);
        // Kept as made, never cut before redaction: a secret anywhere in them is still whole.
        for (const k of t.requests) {
          expect(k.url).toBe(urls[Number(k.url.split('/')[3])]);
          expect(k.headers).toEqual(hugeHeaders);
        }
        kept += stringBytes(t.requests);
        counted += t.bytes;
      }
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThanOrEqual(BOUNDS.traceBytesPerIsolate);
      // Handed over with end(), still counted until whoever holds them drops them.
      expect(budget.bytes).toBe(counted);
    });

    it('the host refuses what the isolate should have: a method past its bound is answered, never sent', async () => {
      let sent = 0;
      const fetcher = {
        fetch: async () => {
          sent++;
          return { status: 200, statusText: 'OK', url: '', redirected: false, headers: [], body: '' };
        },
      } as unknown as HostFetcher;
      const io = new IsolateIo(fetcher);
      io.begin([1]);
      const wire = (method: unknown) => ({ ...huge(0), method }) as FetchRequestWire;
      const long = await io.fetch(1, wire('P'.repeat(BOUNDS.fetchMethodChars + 1)));
      expect(long).toMatchObject({
        error: `a request method can be at most ${BOUNDS.fetchMethodChars} characters`,
        type: 'max-size',
      });
      expect(await io.fetch(1, wire(42))).toMatchObject({ type: 'max-size' });
      expect(sent).toBe(0);
      expect(await io.fetch(1, wire('PROPFIND'))).toMatchObject({ status: 200 });
      expect(sent).toBe(1);
      io.close();
    });

    it('traces of a killed isolate are given back; top-level requests and requests ending after their invocation are not kept', async () => {
      const budget: TraceBudget = { bytes: 0 };
      const io = new IsolateIo(stubFetcher().fetcher, budget);
      io.begin([1, 2]);
      await io.fetch(0, huge(0));
      expect(budget.bytes).toBe(0);
      await io.fetch(1, huge(1));
      await io.fetch(2, huge(2));
      expect(budget.bytes).toBeGreaterThan(0);
      io.close();
      expect(budget.bytes).toBe(0);

      const late = stubFetcher(true);
      const io2 = new IsolateIo(late.fetcher, budget);
      io2.begin([3]);
      const pending = io2.fetch(3, huge(3));
      expect(io2.end([3])).toBeUndefined();
      late.release();
      await pending;
      expect(budget.bytes).toBe(0);
    });
  });
});
