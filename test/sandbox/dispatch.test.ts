// Dispatch by event type, the error classes' outcomes, onBatch partial results and persistence of globals.

import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, HANDLER_FOR_TYPE, type SegmentEvent } from '../../api/events.js';
import { FunctionLoadError, loadFunction } from '../../sandbox/index.js';
import { sandboxes } from '../helpers/sandbox.js';

const sandbox = sandboxes();
const load = (source: string, settings: Record<string, unknown> = {}) => sandbox.load(source, { settings });

const ALL_HANDLERS = Object.values(HANDLER_FOR_TYPE)
  .map(
    (name) => `async function ${name}(event, settings) { console.log('${name}', event.type, settings.tag); }`,
  )
  .join('\n');

describe('dispatch', () => {
  it('reports the handlers a function defines', async () => {
    const sb = await load(
      'async function onTrack() {}\nconst onIdentify = async () => {};\nasync function onBatch() {}',
    );
    expect([...sb.handlers].sort()).toEqual(['onBatch', 'onIdentify', 'onTrack']);
  });

  it.each(EVENT_TYPES)('runs the handler for %s events with the settings', async (type) => {
    const sb = await load(ALL_HANDLERS, { tag: 'T' });
    const [report] = await sb.invoke([{ type, userId: 'u1' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    expect(report!.logs).toEqual([`${HANDLER_FOR_TYPE[type]} ${type} T`]);
  });

  it('an event crosses as the JSON text it was parsed from, when given; the others as themselves', async () => {
    const sb = await load(
      'async function onTrack(event) { console.log(String(event.properties.big), Object.keys(event).join()); }',
    );
    // 1e400 parses as Infinity, which JSON.stringify would write as null: the handler tells the two apart.
    const text = '{"type":"track",  "properties":{"big":1e400},"userId":"u"}';
    const parsed = JSON.parse(text);
    const changed = { ...parsed, userId: 'v' };
    const reports = await sb.invoke([parsed, changed, { type: 'track', properties: { big: 1 } }], [text]);
    expect(reports.map((r) => r.logs)).toEqual([
      ['Infinity type,properties,userId'],
      ['null type,properties,userId'],
      ['1 type,properties'],
    ]);
  });

  it('discards an event whose handler is missing as UnsupportedEventType', async () => {
    const sb = await load('async function onTrack() {}');
    const [report] = await sb.invoke([{ type: 'identify', userId: 'u1' }]);
    expect(report!.outcome).toMatchObject({ outcome: 'discard', errorType: 'UnsupportedEventType' });
    expect(report!.outcome).toHaveProperty('message', expect.stringContaining('onIdentify'));
  });

  it('rejects an event of unknown type as MessageRejected', async () => {
    const sb = await load(ALL_HANDLERS);
    const reports = await sb.invoke([
      { type: 'purchase' },
      { type: 'constructor' },
      { type: '__proto__' },
      {} as SegmentEvent,
    ]);
    for (const report of reports)
      expect(report.outcome).toMatchObject({ outcome: 'discard', errorType: 'MessageRejected' });
  });

  it('gives each event of a micro-batch its own outcome, logs and duration', async () => {
    const sb = await load(`
      async function onTrack(event) {
        await new Promise((r) => setTimeout(r, event.properties.wait));
        console.log('done', event.messageId);
        if (event.properties.fail) throw new RetryError('try later ' + event.messageId);
      }`);
    const reports = await sb.invoke([
      { type: 'track', messageId: 'a', properties: { wait: 30, fail: false } },
      { type: 'track', messageId: 'b', properties: { wait: 1, fail: true } },
      { type: 'track', messageId: 'c', properties: { wait: 10, fail: false } },
    ]);
    expect(reports.map((r) => r.outcome.outcome)).toEqual(['success', 'retry', 'success']);
    expect(reports.map((r) => r.logs)).toEqual([['done a'], ['done b'], ['done c']]);
    expect(reports[1]!.outcome).toMatchObject({ errorType: 'Retry', message: 'try later b' });
  });
});

describe('error types map to outcomes', () => {
  const cases = [
    ['EventNotSupported', 'discard', 'UnsupportedEventType'],
    ['InvalidEventPayload', 'discard', 'MessageRejected'],
    ['ValidationError', 'discard', 'MessageRejected'],
    ['RetryError', 'retry', 'Retry'],
    ['TypeError', 'discard', 'BadRequest'],
    ['Error', 'discard', 'BadRequest'],
  ] as const;

  it.each(cases)('throwing %s → %s (%s)', async (cls, outcome, errorType) => {
    const sb = await load(`async function onTrack() { throw new ${cls}('because'); }`);
    const [report] = await sb.invoke([{ type: 'track', event: 'E' }]);
    expect(report!.outcome).toEqual({ outcome, errorType, message: 'because' });
  });

  it('the error classes are globals and instanceof works inside the isolate', async () => {
    const sb = await load(`
      async function onTrack() {
        const e = new RetryError('x');
        console.log(e instanceof RetryError, e instanceof Error, e.name, typeof EventNotSupported,
          typeof InvalidEventPayload, typeof ValidationError);
      }`);
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual(['true true RetryError function function function']);
  });

  it('a thrown non-error value is a Bad Request with its text', async () => {
    const sb = await load(`async function onTrack() { throw 'plain string'; }`);
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'discard', errorType: 'BadRequest', message: 'plain string' });
  });

  it('a synchronous handler that throws is handled like an async one', async () => {
    const sb = await load(`function onTrack() { throw new ValidationError('sync'); }`);
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'discard', errorType: 'MessageRejected', message: 'sync' });
  });
});

describe('onBatch', () => {
  it('receives mixed event types with the settings', async () => {
    const sb = await load(
      `async function onBatch(events, settings) { console.log(events.map((e) => e.type).join(','), settings.tag); }`,
      {
        tag: 'S',
      },
    );
    const report = await sb.invokeBatch([{ type: 'track' }, { type: 'identify' }, { type: 'delete' }]);
    expect(report.outcome).toEqual({ outcome: 'success' });
    expect(report.results).toEqual([{ outcome: 'success' }, { outcome: 'success' }, { outcome: 'success' }]);
    expect(report.logs).toEqual(['track,identify,delete S']);
  });

  it('maps partial results: 2xx success, 429 and 5xx retry, other statuses discard with the message', async () => {
    const sb = await load(`
      async function onBatch(events) {
        return events.map((e) => ({ status: e.properties.status, errormessage: 'status was ' + e.properties.status }));
      }`);
    const statuses = [200, 201, 429, 500, 503, 400, 404];
    const report = await sb.invokeBatch(
      statuses.map((status) => ({ type: 'track', properties: { status } })),
    );
    expect(report.results).toEqual([
      { outcome: 'success' },
      { outcome: 'success' },
      { outcome: 'retry', errorType: 'Retry', message: 'status was 429' },
      { outcome: 'retry', errorType: 'Retry', message: 'status was 500' },
      { outcome: 'retry', errorType: 'Retry', message: 'status was 503' },
      { outcome: 'discard', errorType: 'BadRequest', message: 'status was 400' },
      { outcome: 'discard', errorType: 'BadRequest', message: 'status was 404' },
    ]);
    expect(report.outcome.outcome).toBe('retry');
  });

  it('a whole-batch RetryError retries every event; another error discards every event', async () => {
    const sb = await load(
      `async function onBatch(events) { throw new (events.length > 1 ? RetryError : Error)('whole'); }`,
    );
    const retried = await sb.invokeBatch([{ type: 'track' }, { type: 'page' }]);
    expect(retried.results).toEqual([
      { outcome: 'retry', errorType: 'Retry', message: 'whole' },
      { outcome: 'retry', errorType: 'Retry', message: 'whole' },
    ]);
    const discarded = await sb.invokeBatch([{ type: 'track' }]);
    expect(discarded.results).toEqual([{ outcome: 'discard', errorType: 'BadRequest', message: 'whole' }]);
  });

  it('a result array of the wrong length is a Bad Request for the batch', async () => {
    const sb = await load(`async function onBatch(events) { return [{ status: 200 }]; }`);
    const report = await sb.invokeBatch([{ type: 'track' }, { type: 'track' }]);
    expect(report.results.map((r) => r.outcome)).toEqual(['discard', 'discard']);
    expect(report.outcome).toMatchObject({
      errorType: 'BadRequest',
      message: expect.stringContaining('1 results for 2 events'),
    });
  });

  it('calling invokeBatch on a function without onBatch discards as UnsupportedEventType', async () => {
    const sb = await load(`async function onTrack() {}`);
    const report = await sb.invokeBatch([{ type: 'track' }]);
    expect(report.outcome).toMatchObject({ outcome: 'discard', errorType: 'UnsupportedEventType' });
  });
});

describe('state', () => {
  it('top-level variables persist between invocations of the same loaded function', async () => {
    const sb = await load(
      `let count = 0; let token; async function onTrack() { count++; token = token || 'tok-' + count; console.log(count, token); }`,
    );
    await sb.invoke([{ type: 'track' }]);
    await sb.invoke([{ type: 'track' }]);
    const [third] = await sb.invoke([{ type: 'track' }]);
    expect(third!.logs).toEqual(['3 tok-1']);
  });

  it('two loaded functions share no state', async () => {
    const source = `globalThis.seen = (globalThis.seen || 0) + 1; async function onTrack() { console.log(seen); }`;
    const a = await load(source);
    const b = await load(source);
    await a.invoke([{ type: 'track' }]);
    const [ra] = await a.invoke([{ type: 'track' }]);
    const [rb] = await b.invoke([{ type: 'track' }]);
    expect(ra!.logs).toEqual(['1']);
    expect(rb!.logs).toEqual(['1']);
  });

  it('handlers get a fresh copy of the settings each time', async () => {
    const sb = await load(
      `async function onTrack(e, settings) { console.log(settings.n); settings.n = 99; }`,
      { n: 1 },
    );
    await sb.invoke([{ type: 'track' }]);
    const [second] = await sb.invoke([{ type: 'track' }]);
    expect(second!.logs).toEqual(['1']);
  });
});

describe('loading', () => {
  it('reports a syntax error with line and column', async () => {
    const err = await loadFunction('async function onTrack() {\n  const x = ;\n}').catch((e) => e);
    expect(err).toBeInstanceOf(FunctionLoadError);
    expect(err).toMatchObject({ line: 2, column: 13 });
    expect(err.reason).toMatch(/SyntaxError: Unexpected token/);
  });

  it('reports an error thrown by top-level code with its position', async () => {
    const err = await loadFunction('const a = 1;\nnull.boom;\nasync function onTrack() {}').catch((e) => e);
    expect(err).toBeInstanceOf(FunctionLoadError);
    expect(err).toMatchObject({ line: 2 });
    expect(err.reason).toMatch(/threw while loading: TypeError/);
  });

  it('captures console output of top-level code', async () => {
    const sb = await load(`console.log('hello from load'); async function onTrack() {}`);
    expect(sb.loadLogs).toEqual(['hello from load']);
  });
});

describe('settings schema', () => {
  const schema = [
    { name: 'apiKey', type: 'string', required: true, sensitive: true },
    { name: 'region', type: 'string' },
    { name: 'retries', type: 'number' },
  ] as const;

  it('runs handlers when the settings satisfy the schema', async () => {
    const sb = await sandbox.load('async function onTrack() {}', {
      settings: { apiKey: 'k', retries: 2 },
      settingsSchema: schema,
    });
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
  });

  it('discards every event as InvalidSettings without running a handler when they do not', async () => {
    const sb = await sandbox.load(
      `async function onTrack() { console.log('ran'); }\nasync function onBatch() { console.log('ran'); }`,
      {
        settings: { region: 7 },
        settingsSchema: schema,
      },
    );
    const [single] = await sb.invoke([{ type: 'track' }]);
    const expected = {
      outcome: 'discard',
      errorType: 'InvalidSettings',
      message: 'setting "apiKey" is required; setting "region" must be a string, not a number',
    };
    expect(single).toEqual({ outcome: expected, logs: [], requests: [], durationMs: 0 });
    const batch = await sb.invokeBatch([{ type: 'track' }, { type: 'page' }]);
    expect(batch.results).toEqual([expected, expected]);
  });
});
