// Redaction is exact: a sensitive value is redacted as written and as code commonly re-spells it
// (JSON-escaped, percent- and form-encoded), and before anything is cut, so no cut shows its head.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redactor } from '../../sandbox/index.js';
import { Destination } from '../helpers/destination.js';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();
let dest: Destination;
beforeAll(async () => {
  dest = await Destination.start();
});
afterAll(() => dest.close());

const QUOTED = 'se"cr\\et/é ü+x';
const TOKEN = 'tok_0123456789abcdefghijklmnopqrstuvwxyz';

/** No spelling of `value` and no head of it of `min` characters or more appears in `text`. */
function expectNoTrace(text: string, value: string, min = 5) {
  for (const form of [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)]) {
    for (let n = min; n <= form.length; n++) expect(text).not.toContain(form.slice(0, n));
  }
}

describe('redaction', () => {
  it('finds a value with quotes and backslashes in its JSON-escaped forms, once and twice escaped', async () => {
    const sb = await load(
      `async function onTrack(event, settings) {
        console.log(JSON.stringify({ key: settings.key }));
        console.log(JSON.stringify(JSON.stringify({ key: settings.key })));
        throw new ValidationError(JSON.stringify({ rejected: settings.key }));
      }`,
      { settings: { key: QUOTED }, sensitiveValues: [QUOTED] },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    const seen = JSON.stringify(report);
    expect(report!.logs).toEqual(['{"key":"[redacted]"}', '"{\\"key\\":\\"[redacted]\\"}"']);
    expect(report!.outcome).toMatchObject({ message: '{"rejected":"[redacted]"}' });
    expectNoTrace(seen, QUOTED);
  });

  it('finds a value percent-encoded or form-encoded in a URL, in traces, logs and errors', async () => {
    dest.respond = () => ({ status: 400, body: {} });
    const sb = await load(
      `async function onTrack(event, settings) {
        const u = new URL(settings.url + '/p');
        u.searchParams.set('form', settings.key);
        const res = await fetch(u.href + '&pct=' + encodeURIComponent(settings.key) + '&low=' + encodeURIComponent(settings.key).toLowerCase());
        console.log(u.href);
        throw new Error('failed ' + u.search + ' ' + res.status);
      }`,
      { allowPrivateNetwork: true, settings: { key: QUOTED, url: dest.url }, sensitiveValues: [QUOTED] },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    // What actually left the function still carries the value: only what is recorded is redacted.
    expect(dest.requests.at(-1)!.url).toContain(encodeURIComponent(QUOTED));
    expect(report!.requests[0]!.url).toBe(`${dest.url}/p?form=[redacted]&pct=[redacted]&low=[redacted]`);
    expectNoTrace(JSON.stringify(report), QUOTED);
  });

  it('redacts before cutting at the log limit: no head of a secret is left at the cut', async () => {
    const sb = await load(
      `async function onTrack(event, settings) {
        if (event.event === 'edge') console.log('x'.repeat(4096 - 6) + settings.token);
        else console.log(settings.token.repeat(410));
      }`,
      { settings: { token: TOKEN }, sensitiveValues: [TOKEN] },
    );
    const [edge, many] = await sb.invoke([
      { type: 'track', event: 'edge' },
      { type: 'track', event: 'many' },
    ]);
    for (const report of [edge!, many!]) {
      expect(report.logs.at(-1)).toMatch(/^\[log truncated/);
      expectNoTrace(report.logs.join('\n'), TOKEN, 3);
      expect(
        Buffer.byteLength(
          report.logs
            .slice(0, -1)
            .map((l) => `${l}\n`)
            .join(''),
        ),
      ).toBeLessThanOrEqual(4096);
    }
    // The isolate cut the raw line inside the 410th copy; after redaction that cut fell within the limit.
    expect(many!.logs[0]).toMatch(/^(\[redacted\])+$/);
  });

  it('redacts error messages before cutting them, in single and batch results', async () => {
    const sb = await load(
      `async function onTrack(event, settings) { throw new Error('x'.repeat(1995) + settings.token); }
       async function onBatch(events, settings) {
         return events.map(() => ({ status: 400, errormessage: settings.token.repeat(600) }));
       }`,
      { settings: { token: TOKEN }, sensitiveValues: [TOKEN] },
    );
    const [single] = await sb.invoke([{ type: 'track' }]);
    const batch = await sb.invokeBatch([{ type: 'track' }, { type: 'track' }]);
    expectNoTrace(JSON.stringify(single), TOKEN, 3);
    expectNoTrace(JSON.stringify(batch), TOKEN, 3);
    expect((single!.outcome as { message: string }).message.length).toBeLessThanOrEqual(2000);
  });

  it('the runner’s redactor treats its text the same way (records, dead letters, last errors)', () => {
    const r = new Redactor([QUOTED, TOKEN]);
    expect(r.text(`a ${JSON.stringify({ QUOTED })} b`)).toBe('a {"QUOTED":"[redacted]"} b');
    expect(r.text(`?q=${encodeURIComponent(QUOTED)}&f=${new URLSearchParams({ f: QUOTED })}`)).toBe(
      '?q=[redacted]&f=f=[redacted]',
    );
    expect(r.bounded(`${'y'.repeat(90)}${TOKEN}`, 100)).toBe(`${'y'.repeat(90)}[redacted]`);
    expect(r.bounded(`${'y'.repeat(95)}${TOKEN}`, 100)).toBe(`${'y'.repeat(95)}[red…`);
    expect(r.bounded(`${'y'.repeat(20)}${TOKEN.slice(0, 7)}`, 100, true)).toBe(`${'y'.repeat(20)}…`);
  });

  it('traced headers: names lower-cased, credentials and secrets redacted, any name an own property', () => {
    const r = new Redactor([TOKEN]);
    const traced = r.headers([
      ['Authorization', 'Basic abc'],
      ['X-Api-Key', 'k'],
      ['X-Token', `t ${TOKEN}`],
      ['__proto__', 'p'],
      ['Content-Type', 'text/plain'],
      ['content-type', 'application/json'], // the last of a repeated name is kept
    ]);
    expect(Object.getPrototypeOf(traced)).toBe(Object.prototype);
    expect(Object.getOwnPropertyNames(traced)).toEqual([
      'authorization',
      'x-api-key',
      'x-token',
      '__proto__',
      'content-type',
    ]);
    expect(traced).toMatchObject({
      authorization: '[redacted]',
      'x-api-key': '[redacted]',
      'x-token': 't [redacted]',
      'content-type': 'application/json',
    });
    expect(Object.getOwnPropertyDescriptor(traced, '__proto__')?.value).toBe('p');
    expect(JSON.stringify(traced)).toContain('"__proto__":"p"');
  });
});
