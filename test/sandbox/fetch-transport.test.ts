// The wire under fetch (host-http.ts over undici) as a bad day meets it: more destination hosts than the
// pools kept, a header the client cannot send, bodies crossing back inline and apart in one crossing, and
// the egress verdicts kept per policy. Each against real servers on 127.0.0.1.

import { createHash } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOUNDS } from '../../sandbox/bounds.js';
import { sandboxes } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

const { load, logsOf } = sandboxes();
const POOLED = BOUNDS.socketsPerIsolate / BOUNDS.socketsPerHost;

interface Destination {
  server: Server;
  url: string;
  open: Set<Socket>;
}
const destinations: Destination[] = [];
/** Redirect responses still being sent. */
const dripping = new Set<ServerResponse>();
/** Bytes 0..255 over and over: every byte value, control characters and latin1's upper half included. */
const binary = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i % 256));

beforeAll(async () => {
  for (let i = 0; i < POOLED + 2; i++) {
    const open = new Set<Socket>();
    const server = createServer((req, res) => {
      req.resume();
      if (req.url?.startsWith('/binary/')) res.end(binary(Number(req.url.slice('/binary/'.length))));
      else if (req.url === '/redirect-forever') {
        // A redirect whose body never ends: the client follows it and must not keep this connection.
        res.writeHead(302, { location: '/after' });
        res.write('moving on');
        dripping.add(res);
        res.on('close', () => dripping.delete(res));
      } else res.end(JSON.stringify({ at: i, te: req.headers['transfer-encoding'] ?? null }));
    });
    server.on('connection', (socket) => {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    destinations.push({
      server,
      open,
      url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    });
  }
});
afterAll(async () => {
  for (const d of destinations) {
    d.server.closeAllConnections();
    await new Promise<void>((r) => d.server.close(() => r()));
  }
});

describe('fetch over pooled connections', () => {
  it(`past ${POOLED} destination hosts, the pool used least recently is closed: its idle sockets go`, async () => {
    const sb = await load(
      `async function onTrack(event, settings) {
         for (const url of settings.urls) console.log((await (await fetch(url)).json()).at);
       }`,
      { allowPrivateNetwork: true, settings: { urls: destinations.map((d) => d.url) } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    expect(report!.logs).toEqual(destinations.map((_, i) => String(i)));
    // The first two hosts' pools were closed as the last two were opened; the others keep their socket.
    await waitFor(
      'the first two hosts’ sockets to close',
      () => destinations[0]!.open.size === 0 && destinations[1]!.open.size === 0,
      10_000,
    );
    expect(destinations.slice(2).map((d) => d.open.size)).toEqual(destinations.slice(2).map(() => 1));
    // A closed pool's host is reached again over a new one.
    const [again] = await sb.invoke([{ type: 'track' }]);
    expect(again!.logs).toEqual(destinations.map((_, i) => String(i)));
  });

  it('a redirect whose body never ends is followed, and its connection is let go within the host’s limit', async () => {
    const logs = await logsOf(
      `const res = await fetch(settings.url + '/redirect-forever');
       console.log(res.redirected, (await res.json()).at);`,
      {
        allowPrivateNetwork: true,
        settings: { url: destinations[0]!.url },
        limits: { fetchTimeoutMs: 1000 },
      },
    );
    expect(logs).toEqual(['true 0']);
    expect(dripping.size).toBe(1);
    await waitFor('the redirect’s connection to be closed', () => dripping.size === 0, 10_000);
  });

  it('a header the HTTP client cannot send is a FetchError in user code, and the next request goes out', async () => {
    const logs = await logsOf(
      `try { await fetch(settings.url, { headers: { 'Transfer-Encoding': 'chunked' } }); console.log('sent'); }
       catch (e) { console.log(e.name, e.type, e.message); }
       console.log(JSON.stringify(await (await fetch(settings.url)).json()));`,
      { allowPrivateNetwork: true, settings: { url: destinations[0]!.url } },
    );
    expect(logs[0]).toMatch(
      /^FetchError system request to http:\/\/127\.0\.0\.1:\d+\/ failed, reason: .*transfer-encoding/,
    );
    expect(logs[1]).toBe('{"at":0,"te":null}');
  });

  it('small and large binary bodies answered in one crossing arrive byte for byte', async () => {
    const sizes = [0, 1, 255, 16 * 1024, 16 * 1024 + 1, 300_000];
    const logs = await logsOf(
      `const bodies = await Promise.all(settings.sizes.map((n) => fetch(settings.url + '/binary/' + n).then((r) => r.buffer())));
       for (const b of bodies) console.log(b.length, crypto.createHash('sha256').update(b).digest('hex'));`,
      { allowPrivateNetwork: true, settings: { url: destinations[0]!.url, sizes } },
    );
    expect(logs).toEqual(sizes.map((n) => `${n} ${createHash('sha256').update(binary(n)).digest('hex')}`));
  });

  it('an address refused under one policy is not refused under another, nor allowed after it', async () => {
    const body = `try { await fetch(settings.url); console.log('reached'); } catch (e) { console.log(e.type); }`;
    const settings = { url: destinations[0]!.url };
    expect(await logsOf(body, { settings })).toEqual(['refused']);
    expect(await logsOf(body, { settings, allowPrivateNetwork: true })).toEqual(['reached']);
    expect(await logsOf(body, { settings })).toEqual(['refused']);
  });
});
