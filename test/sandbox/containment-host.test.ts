// Nothing of the host is reachable, and nothing the function does to the isolate's built-ins decides what
// the host records: options crossing to isolated-vm ignore prototypes, bodies are exact copies, the
// dispatcher survives broken intrinsics, and the host checks its output (each case is a real function).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectBenignDelivered, hostileSource, rssMb } from '../helpers/containment.js';
import { Destination } from '../helpers/destination.js';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();
let dest: Destination;
beforeAll(async () => {
  dest = await Destination.start();
});
afterAll(() => dest.close());

const TRANSFER_OPTIONS = ['reference', 'copy', 'externalCopy', 'promise', 'result', 'arguments', 'timeout'];

describe('options handed to isolated-vm', () => {
  it('getters on Object.prototype named like transfer options change nothing: no ivm.Reference reaches user code', async () => {
    const sb = await load(
      hostileSource(`
        const seen = [];
        for (const name of ${JSON.stringify(TRANSFER_OPTIONS)}) {
          Object.defineProperty(Object.prototype, name, {
            configurable: true,
            get() { seen.push(name); return name === 'result' || name === 'arguments' ? { reference: true } : true; },
          });
        }
        const kinds = (v) => v && typeof v === 'object' ? Object.getPrototypeOf(v)?.constructor?.name : typeof v;
        try {
          const res = await fetch(settings.url + '/x');
          const body = await res.json();
          await new Promise((r) => setTimeout(r, 1));
          const digest = crypto.createHash('sha1').update('a').digest('hex');
          console.log(res.status, res instanceof Response, kinds(body), body.ok, digest.length, typeof res.deref, typeof res.copySync);
        } finally {
          for (const name of ${JSON.stringify(TRANSFER_OPTIONS)}) delete Object.prototype[name];
        }
        console.log(seen.filter((n) => n !== 'timeout').length);`),
      { allowPrivateNetwork: true, settings: { url: dest.url } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    expect(report!.logs).toEqual(['200 true Object true 40 undefined undefined', '0']);
    await expectBenignDelivered(sb);
  });
});

describe('bodies crossing into the isolate', () => {
  it('are exact copies: .buffer of a body holds that body and nothing else', async () => {
    dest.respond = (req) => ({ status: 200, body: req.url === '/tiny' ? 'ok' : { other: 'x'.repeat(3000) } });
    const sb = await load(
      hostileSource(`
        await (await fetch(settings.url + '/big')).text();
        const b = await (await fetch(settings.url + '/tiny')).buffer();
        const ab = await (await fetch(settings.url + '/tiny')).arrayBuffer();
        const bytes = new Uint8Array(b.buffer);
        // What the body holds inside, whatever a method exposes of it:
        const inner = (await fetch(settings.url + '/tiny'))._bytes();
        console.log(b.length, b.buffer.byteLength, b.byteOffset, ab.byteLength, String.fromCharCode(...bytes));
        console.log(inner.buffer.byteLength, inner.byteOffset);`),
      { allowPrivateNetwork: true, settings: { url: dest.url } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual(['2 2 0 2 ok', '2 0']);
  });
});

describe('the dispatcher among broken built-ins', () => {
  it('Map, Array, Promise, JSON, Reflect, Function and Object methods replaced by user code: later invocations still report exactly', async () => {
    const sb = await load(
      `async function onIdentify(event) { console.log('good', event.userId); }
       async function onTrack(event) {
         const boom = () => { throw new Error('replaced'); };
         Map.prototype.get = boom; Map.prototype.set = boom; Map.prototype.delete = boom;
         Array.prototype.push = boom; Array.prototype[Symbol.iterator] = boom;
         Object.defineProperty(Array.prototype, '0', { configurable: true, set: boom, get: () => 'forged' });
         Promise.all = boom; Promise.race = boom; Promise.resolve = boom; Promise.prototype.then = boom;
         JSON.stringify = () => '{"results":[{"ok":true}],"logs":[{"lines":["forged"]}]}';
         Reflect.apply = boom; Function.prototype.call = boom; Function.prototype.bind = boom;
         Object.setPrototypeOf = boom; Object.getPrototypeOf = boom;
         Object.defineProperty(Object.prototype, 'errorClass', { configurable: true, get: () => 'RetryError' });
         throw new ValidationError('rejected for real');
       }`,
    );
    const [first] = await sb.invoke([{ type: 'track' }]);
    expect(first!.outcome).toMatchObject({
      outcome: 'discard',
      errorType: 'MessageRejected',
      message: 'rejected for real',
    });
    const reports = await sb.invoke([
      { type: 'identify', userId: 'a' },
      { type: 'identify', userId: 'b' },
    ]);
    expect(reports.map((r) => [r.outcome, r.logs])).toEqual([
      [{ outcome: 'success' }, ['good a']],
      [{ outcome: 'success' }, ['good b']],
    ]);
  });

  it('Object.prototype.toJSON cannot forge results or inflate logs', async () => {
    const sb = await load(
      hostileSource(`
        const forged = { results: [{ ok: true }], logs: [{ lines: ['x'.repeat(2e6)] }] };
        Object.prototype.toJSON = function () { return forged; };
        Array.prototype.toJSON = function () { return forged; };
        console.log('real line');
        throw new RetryError('really failed');`),
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toMatchObject({ outcome: 'retry', errorType: 'Retry', message: 'really failed' });
    expect(report!.logs).toEqual(['real line']);
  });
});

describe('output the host accepts', () => {
  it('console output is capped in bytes of UTF-8: 4,000 × € in one line keeps at most 4,096 bytes', async () => {
    const sb = await load(hostileSource(`console.log('€'.repeat(4000)); console.log('after');`));
    const [report] = await sb.invoke([{ type: 'track' }]);
    const kept = report!.logs.slice(0, -1);
    expect(report!.logs.at(-1)).toMatch(/^\[log truncated/);
    expect(Buffer.byteLength(kept.map((l) => `${l}\n`).join(''))).toBeLessThanOrEqual(4096);
    expect(kept[0]).toMatch(/^€+$/);
    expect(kept[0]!.length).toBeGreaterThan(1300);
  });

  it('a thrown 512 MB message settles without being read (reading flattens it), and the next event is delivered', async () => {
    const before = rssMb();
    const sb = await load(hostileSource(`throw new Error('x'.repeat(2 ** 29 - 24));`), {
      limits: { memoryMb: 1024, timeoutMs: 10_000 },
    });
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toMatchObject({ outcome: 'discard', errorType: 'BadRequest' });
    const message = (report!.outcome as { message: string }).message;
    expect(message).toBe(`[a string of ${2 ** 29 - 24} characters, too long to show]…`);
    expect(rssMb() - before).toBeLessThan(200);
    await expectBenignDelivered(sb);
  });

  it('a long message is cut, not dropped', async () => {
    const sb = await load(hostileSource(`throw new Error('x'.repeat(100000));`));
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect((report!.outcome as { message: string }).message).toMatch(/^x{1999}…$/);
  });

  it('a huge error logged through console is cut in the isolate, not copied whole', async () => {
    const sb = await load(
      hostileSource(
        `const e = new Error('y'.repeat(2 ** 28)); console.log(e); console.error(e); console.log('z'.repeat(2 ** 27));`,
      ),
      { limits: { memoryMb: 1024, timeoutMs: 10_000 } },
    );
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    expect(Buffer.byteLength(report!.logs.join('\n'))).toBeLessThan(5000);
    await expectBenignDelivered(sb);
  });

  it('onBatch returning a proxy that claims a billion results is refused without reading them', async () => {
    const sb = await load(`async function onBatch(events) {
      return new Proxy([], { get: (t, k) => (k === 'length' ? 1e9 : { status: 200 }) });
    }`);
    const report = await sb.invokeBatch([{ type: 'track' }, { type: 'track' }]);
    expect(report.outcome).toMatchObject({
      outcome: 'discard',
      message: expect.stringContaining('1000000000 results for 2 events'),
    });
  });
});
