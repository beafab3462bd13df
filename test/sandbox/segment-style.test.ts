// Functions written the way Segment users write them (patterns of Segment's public functions library)
// run unmodified against real HTTP servers on 127.0.0.1.

import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Destination } from '../helpers/destination.js';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();
let api: Destination;
beforeAll(async () => {
  api = await Destination.start();
});
afterAll(() => api.close());

// A list-membership destination: subscriber hash = md5 of the lower-cased email, basic auth with btoa.
const LIST_SYNC = `
async function onIdentify(event, settings) {
  const email = event.traits && event.traits.email;
  if (!_.isString(email)) throw new ValidationError('email is required');
  const hash = crypto.createHash('md5').update(email.toLowerCase()).digest('hex');
  const endpoint = new URL('/3.0/lists/' + settings.listId + '/members/' + hash, settings.apiUrl);
  const res = await fetch(endpoint.toString(), {
    method: 'PUT',
    headers: new Headers({
      Authorization: 'Basic ' + btoa('anystring:' + settings.apiKey),
      'Content-Type': 'application/json',
    }),
    body: JSON.stringify({ email_address: email, status_if_new: 'subscribed', merge_fields: { FNAME: event.traits.firstName || '' } }),
  });
  if (res.status >= 500 || res.status === 429) throw new RetryError('Failed with ' + res.status);
  if (!res.ok) throw new Error('Rejected: ' + res.status + ' ' + (await res.text()));
}

async function onTrack(event, settings) {
  throw new EventNotSupported('track is not supported');
}`;

// A token-caching destination: fetches an OAuth token once per TTL, then posts events with it.
const TOKEN_CACHING = `
async function getToken(settings) {
  return cache.load('token', 60 * 1000, async () => {
    const res = await fetch(settings.apiUrl + '/oauth/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: settings.clientId, client_secret: settings.clientSecret }),
    });
    const json = await res.json();
    return json.access_token;
  });
}

async function onTrack(event, settings) {
  const token = await getToken(settings);
  const url = new URL('/events', settings.apiUrl);
  url.searchParams.set('source', 'segment');
  const res = await fetch(url, {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: event.event, user: event.userId, ts: event.timestamp, props: event.properties }),
  });
  if (res.status === 429 || res.status >= 500) throw new RetryError('status ' + res.status);
  return res.json();
}`;

describe('Segment-style functions', () => {
  it('list sync: md5 subscriber hash, btoa basic auth, new URL and new Headers', async () => {
    api.respond = () => ({ status: 200, body: { id: 'sub' } });
    const sb = await load(LIST_SYNC, {
      allowPrivateNetwork: true,
      settings: { apiUrl: api.url, apiKey: 'key-us1', listId: 'L1' },
      sensitiveValues: ['key-us1'],
    });
    const reports = await sb.invoke([
      { type: 'identify', userId: 'u1', traits: { email: 'Ada@Example.com', firstName: 'Ada' } },
      { type: 'identify', userId: 'u2', traits: {} },
      { type: 'track', event: 'X', userId: 'u1' },
    ]);
    expect(reports.map((r) => r.outcome)).toEqual([
      { outcome: 'success' },
      { outcome: 'discard', errorType: 'MessageRejected', message: 'email is required' },
      { outcome: 'discard', errorType: 'UnsupportedEventType', message: 'track is not supported' },
    ]);
    const req = api.requests.at(-1)!;
    expect(req.method).toBe('PUT');
    expect(req.url).toBe(
      `/3.0/lists/L1/members/${createHash('md5').update('ada@example.com').digest('hex')}`,
    );
    expect(req.headers.authorization).toBe(`Basic ${Buffer.from('anystring:key-us1').toString('base64')}`);
    expect(req.json()).toEqual({
      email_address: 'Ada@Example.com',
      status_if_new: 'subscribed',
      merge_fields: { FNAME: 'Ada' },
    });
    expect(reports[0]!.requests[0]!.requestHeaders.authorization).toBe('[redacted]');
  });

  it('list sync: 429 and 5xx become RetryError, 400 a Bad Request with the API’s answer', async () => {
    const sb = await load(LIST_SYNC, {
      allowPrivateNetwork: true,
      settings: { apiUrl: api.url, apiKey: 'k', listId: 'L1' },
    });
    for (const [status, expected] of [
      [429, { outcome: 'retry', errorType: 'Retry', message: 'Failed with 429' }],
      [502, { outcome: 'retry', errorType: 'Retry', message: 'Failed with 502' }],
      [
        400,
        {
          outcome: 'discard',
          errorType: 'BadRequest',
          message: 'Rejected: 400 {"title":"Invalid Resource"}',
        },
      ],
    ] as const) {
      api.respond = () => ({ status, body: { title: 'Invalid Resource' } });
      const [report] = await sb.invoke([{ type: 'identify', traits: { email: 'a@b.c' } }]);
      expect(report!.outcome).toEqual(expected);
    }
  });

  it('token caching: one token request for many events, then the cached token', async () => {
    api.respond = (req) =>
      req.url === '/oauth/token'
        ? { status: 200, body: { access_token: 'tok-1' } }
        : { status: 202, body: { accepted: true } };
    const before = api.requests.length;
    const sb = await load(TOKEN_CACHING, {
      allowPrivateNetwork: true,
      settings: { apiUrl: api.url, clientId: 'cid', clientSecret: 'shh-secret' },
      sensitiveValues: ['shh-secret'],
    });
    const events = Array.from({ length: 5 }, (_, i) => ({
      type: 'track',
      event: 'Played',
      userId: `u${i}`,
      properties: { i },
    }));
    const first = await sb.invoke(events);
    const second = await sb.invoke(events.slice(0, 2));
    expect([...first, ...second].every((r) => r.outcome.outcome === 'success')).toBe(true);
    const sent = api.requests.slice(before);
    expect(sent.filter((r) => r.url === '/oauth/token')).toHaveLength(1);
    expect(sent.find((r) => r.url === '/oauth/token')!.body).toBe(
      'grant_type=client_credentials&client_id=cid&client_secret=shh-secret',
    );
    const posted = sent.filter((r) => r.url === '/events?source=segment');
    expect(posted).toHaveLength(7);
    expect(posted.every((r) => r.headers.authorization === 'Bearer tok-1')).toBe(true);
    // The invocation that fetched the token has both requests in its trace; the others only their own.
    expect(first.map((r) => r.requests.length).sort()).toEqual([1, 1, 1, 1, 2]);
  });
});
