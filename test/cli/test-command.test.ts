// `dfn test` as a user runs it: human and --json output, exit statuses, stdin, usage and load errors.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOUNDS } from '../../sandbox/index.js';
import { Destination } from '../helpers/destination.js';
import { runDfn } from '../helpers/dfn.js';

let dir: string;
let dest: Destination;
const file = (name: string, content: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dfn-test-cmd-'));
  dest = await Destination.start();
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await dest.close();
});

const webhook = new URL('../../examples/webhook/function.js', import.meta.url).pathname;
const track = new URL('../../examples/webhook/sample/track.json', import.meta.url).pathname;

describe('dfn test', () => {
  it('runs the example against a local destination and prints the human report', async () => {
    dest.respond = () => undefined;
    const settings = file('settings.json', { endpoint: dest.url, apiKey: 'sk_test_1234' });
    const run = await runDfn([
      'test',
      webhook,
      '--event',
      track,
      '--settings',
      settings,
      '--sensitive',
      'apiKey',
      '--allow-private-network',
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Outcome: success');
    expect(run.stdout).toContain('delivered track msg-0001 → 200');
    expect(run.stdout).toMatch(new RegExp(`POST ${dest.url}/events\\?type=track → 200 \\(\\d+ ms\\)`));
    const received = dest.requests.at(-1)!;
    expect(received.headers.authorization).toBe(`Basic ${Buffer.from('sk_test_1234:').toString('base64')}`);
    expect(received.json()).toMatchObject({ event: 'Order Completed', messageId: 'msg-0001' });
  });

  it('--json prints one object with outcome, error, logs and requests; exit 1 on a discard', async () => {
    dest.respond = () => ({ status: 400, body: 'bad email' });
    const settings = file('settings.json', { endpoint: dest.url, apiKey: 'sk_test_1234' });
    const event = file('identify.json', { type: 'identify', userId: 'u1', traits: { email: 'a@b.c' } });
    const run = await runDfn([
      'test',
      webhook,
      '-e',
      event,
      '-s',
      settings,
      '--json',
      '--allow-private-network',
      '--sensitive',
      'apiKey',
    ]);
    expect(run.code).toBe(1);
    const out = JSON.parse(run.stdout);
    expect(out).toEqual({
      outcome: 'discard',
      errorType: 'MessageRejected',
      message: 'webhook rejected the event: 400 bad email',
      logs: [],
      requests: [
        {
          method: 'POST',
          url: `${dest.url}/events?type=identify`,
          status: 400,
          durationMs: expect.any(Number),
        },
      ],
    });
  });

  it('says how many requests went untraced past the trace bound, in the report and in --json', async () => {
    dest.respond = () => undefined;
    const fn = file(
      'many.js',
      `async function onTrack(event, settings) {
        await Promise.all(Array.from({ length: settings.n }, (_, i) => fetch(settings.url + '/many/' + i)));
      }`,
    );
    const settings = file('many-settings.json', { url: dest.url, n: BOUNDS.tracesPerInvocation + 2 });
    const args = ['test', fn, '-e', track, '-s', settings, '--allow-private-network'];
    const human = await runDfn(args);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(
      `  … and 2 more requests, not traced (at most ${BOUNDS.tracesPerInvocation} are, per invocation, within 1 MiB of them and 16 MiB for all invocations at once)`,
    );
    const json = JSON.parse((await runDfn([...args, '--json'])).stdout);
    expect(json.requests).toHaveLength(BOUNDS.tracesPerInvocation);
    expect(json.requestsNotTraced).toBe(2);
  });

  it('exit 1 with errorType Retry when the function asks for a retry', async () => {
    dest.respond = () => ({ status: 503 });
    const settings = file('settings.json', { endpoint: dest.url, apiKey: 'k' });
    const run = await runDfn([
      'test',
      webhook,
      '-e',
      track,
      '-s',
      settings,
      '--json',
      '--allow-private-network',
    ]);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({
      outcome: 'retry',
      errorType: 'Retry',
      message: 'webhook answered 503',
    });
  });

  it('reads the event from stdin with --event -', async () => {
    const fn = file('fn.js', `async function onPage(event) { console.log('page', event.name); }`);
    const run = await runDfn(['test', fn, '--event', '-', '--json'], {
      stdin: '{"type":"page","name":"Home"}',
    });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ outcome: 'success', logs: ['page Home'], requests: [] });
  });

  it('an array runs onBatch and reports one result per event', async () => {
    const fn = file(
      'batch.js',
      `async function onBatch(events) { return events.map((e) => ({ status: e.userId === 'bad' ? 400 : 200, errormessage: 'no ' + e.userId })); }`,
    );
    const events = file('events.json', [
      { type: 'track', event: 'A', userId: 'ok' },
      { type: 'identify', userId: 'bad' },
    ]);
    const run = await runDfn(['test', fn, '-e', events, '--json']);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({
      outcome: 'discard',
      results: [{ outcome: 'success' }, { outcome: 'discard', errorType: 'BadRequest', message: 'no bad' }],
    });
    const human = await runDfn(['test', fn, '-e', events]);
    expect(human.stdout).toContain('[0] track A: success');
    expect(human.stdout).toContain('[1] identify: discard (BadRequest): no bad');
  });

  it('an array without onBatch runs each event’s own handler', async () => {
    const fn = file('single.js', `async function onTrack(e) { console.log('t', e.event); }`);
    const events = file('two.json', [
      { type: 'track', event: 'A' },
      { type: 'screen', name: 'S' },
    ]);
    const run = await runDfn(['test', fn, '-e', events, '--json']);
    expect(JSON.parse(run.stdout)).toMatchObject({
      outcome: 'discard',
      errorType: 'UnsupportedEventType',
      logs: ['t A'],
      results: [{ outcome: 'success' }, { outcome: 'discard', errorType: 'UnsupportedEventType' }],
    });
  });

  it('a syntax error exits 2 with file, line and column', async () => {
    const fn = file('broken.js', 'async function onTrack(event) {\n  return event.;\n}\n');
    const run = await runDfn(['test', fn, '-e', track]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(`dfn test: ${fn.replace(/[.]/g, '\\.')}:2:16: SyntaxError: Unexpected token`),
    );
    expect(run.stdout).toBe('');
  });

  it.each([
    [
      ['test', '/nope/function.js', '-e', 'x.json'],
      /cannot read function file \/nope\/function\.js: no such file/,
    ],
    [
      ['test', 'WEBHOOK', '-e', '/nope/event.json'],
      /cannot read event file \/nope\/event\.json: no such file/,
    ],
    [['test', 'WEBHOOK', '-e', 'BADJSON'], /is not valid JSON/],
    [['test', 'WEBHOOK', '-e', 'NUMBER'], /the event must be a JSON object, or an array of events/],
    [['test', 'WEBHOOK', '-e', 'TRACK', '-s', 'ARRAY'], /settings must be a JSON object/],
    [['test', 'WEBHOOK'], /required option '-e, --event/],
    [
      ['test', 'WEBHOOK', '-e', 'TRACK', '--timeout', 'soon'],
      /--timeout <ms>' argument 'soon' is invalid. it must be a positive integer/,
    ],
  ])('usage error %# exits 2 with a clear message', async (args, message) => {
    const paths: Record<string, string> = {
      WEBHOOK: webhook,
      TRACK: track,
      BADJSON: file('bad.json', '{"type": "track",'),
      NUMBER: file('number.json', '42'),
      ARRAY: file('array.json', '[]'),
    };
    const run = await runDfn(args.map((a) => paths[a] ?? a));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
  });

  it('--help explains the event forms and exit statuses', async () => {
    const run = await runDfn(['test', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--allow-private-network');
    expect(run.stdout).toContain('An array runs onBatch');
    expect(run.stdout).toContain('Exit status: 0 success, 1 retry or discard, 2 usage or load error');
  });
});
