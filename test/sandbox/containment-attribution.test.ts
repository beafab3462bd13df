// Attribution: logs and requests belong to the invocation whose code made them, also when concurrent
// invocations resume from one shared promise (a memoised token), through helpers, timers and cache.load.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Destination } from '../helpers/destination.js';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();
let dest: Destination;
beforeAll(async () => {
  dest = await Destination.start();
  dest.respond = (req) => (req.url === '/token' ? { status: 200, body: { token: 't1' } } : undefined);
});
afterAll(() => dest.close());

const local = { allowPrivateNetwork: true } as const;
const IDS = ['m1', 'm2', 'm3'];
const events = IDS.map((messageId) => ({ type: 'track', messageId }));

function expectOwn(
  reports: { logs: string[]; requests: { url: string }[] }[],
  paths: (id: string) => string[],
) {
  reports.forEach((r, i) => {
    const id = IDS[i]!;
    for (const line of r.logs) expect(line).toContain(id);
    expect(r.requests.map((t) => t.url)).toEqual(paths(id).map((p) => dest.url + p));
  });
}

describe('attribution', () => {
  it('a memoised token promise shared by three concurrent events: each event keeps its own logs and requests', async () => {
    const sb = await load(
      `let tokenPromise;
       function getToken(url) {
         tokenPromise ??= fetch(url + '/token').then((r) => r.json()).then((b) => b.token);
         return tokenPromise;
       }
       async function onTrack(event, settings) {
         const token = await getToken(settings.url);
         console.log('got token for', event.messageId);
         await fetch(settings.url + '/send/' + event.messageId, { headers: { authorization: token } });
         console.log('sent', event.messageId);
       }`,
      { ...local, settings: { url: dest.url } },
    );
    const reports = await sb.invoke(events);
    expect(reports.map((r) => r.logs)).toEqual(IDS.map((id) => [`got token for ${id}`, `sent ${id}`]));
    // The token request was made by the first event's code: it is the first event's.
    expectOwn(reports, (id) => (id === 'm1' ? ['/token', `/send/${id}`] : [`/send/${id}`]));
  });

  it('through helper functions and object methods awaiting the shared promise', async () => {
    const sb = await load(
      `let shared;
       const client = (url) => ({
         async send(id) { await (shared ??= new Promise((r) => setTimeout(r, 20))); console.log('client', id); return fetch(url + '/c/' + id); },
       });
       async function deliver(url, id) { await shared; console.log('deliver', id); await client(url).send(id); }
       async function onTrack(event, settings) {
         await client(settings.url).send(event.messageId);
         await deliver(settings.url, event.messageId);
       }`,
      { ...local, settings: { url: dest.url } },
    );
    const reports = await sb.invoke(events);
    expect(reports.map((r) => r.logs)).toEqual(
      IDS.map((id) => [`client ${id}`, `deliver ${id}`, `client ${id}`]),
    );
    expectOwn(reports, (id) => [`/c/${id}`, `/c/${id}`]);
  });

  it('cache.load shared by concurrent events keeps each event’s own output', async () => {
    const sb = await load(
      `async function onTrack(event, settings) {
         const token = await cache.load('token', 60000, async () => {
           const r = await fetch(settings.url + '/token');
           return (await r.json()).token;
         });
         console.log(event.messageId, token);
         await fetch(settings.url + '/x/' + event.messageId);
       }`,
      { ...local, settings: { url: dest.url } },
    );
    const reports = await sb.invoke(events);
    expect(reports.map((r) => r.logs)).toEqual(IDS.map((id) => [`${id} t1`]));
    expectOwn(reports, (id) => (id === 'm1' ? ['/token', `/x/${id}`] : [`/x/${id}`]));
  });

  it('a handler’s `this` still reaches the globals', async () => {
    const sb = await load(
      `var shared = 'global';
       async function onTrack(event) { console.log(event.messageId, this.shared, typeof this.fetch, this.console === console); }`,
    );
    const reports = await sb.invoke(events);
    expect(reports.map((r) => r.logs)).toEqual(IDS.map((id) => [`${id} global function true`]));
  });
});
