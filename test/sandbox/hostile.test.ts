// Hostile code is contained with the right outcome, and a good invocation succeeds right after.

import { describe, expect, it } from 'vitest';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();

/** onTrack misbehaves as `body` says; onIdentify is the good invocation that must work afterwards. */
async function hostile(body: string, limits = {}) {
  return load(
    `let good = 0;
     async function onIdentify() { good++; console.log('good', good); }
     async function onTrack(event, settings) {\n${body}\n}`,
    { limits: { timeoutMs: 400, ...limits } },
  );
}

async function expectRecovers(sb: Awaited<ReturnType<typeof hostile>>) {
  const [next] = await sb.invoke([{ type: 'identify', userId: 'u' }]);
  expect(next!.outcome).toEqual({ outcome: 'success' });
  expect(next!.logs).toHaveLength(1);
}

describe('limits', () => {
  it('an infinite loop times out, the isolate is rebuilt, the next invocation succeeds', async () => {
    const sb = await hostile('while (true) {}');
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toMatchObject({ outcome: 'retry', errorType: 'Timeout' });
    await expectRecovers(sb);
    expect(sb.rebuilds).toBe(1);
  });

  it('a CPU loop after an await times out too', async () => {
    const sb = await hostile('await new Promise((r) => setTimeout(r, 10)); await null; for (;;) {}');
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toMatchObject({ outcome: 'retry', errorType: 'Timeout' });
    await expectRecovers(sb);
  });

  it('a promise that never settles times out without taking the others down', async () => {
    const sb = await hostile('await new Promise(() => {});');
    const reports = await sb.invoke([{ type: 'track' }, { type: 'identify', userId: 'u' }]);
    expect(reports[0]!.outcome).toMatchObject({ outcome: 'retry', errorType: 'Timeout' });
    expect(reports[1]!.outcome).toEqual({ outcome: 'success' });
    await expectRecovers(sb);
    expect(sb.rebuilds).toBe(0); // the isolate stayed responsive: no need to rebuild it
  });

  it('invocations that end first leave their neighbours the whole deadline, and one that never settles still times out', async () => {
    const sb = await load(
      `async function onIdentify() {}
       async function onTrack(event) {
         if (event.event === 'never') await new Promise(() => {});
         await new Promise((r) => setTimeout(r, 300));
         console.log('finished', event.event);
       }`,
      { limits: { timeoutMs: 1500 } },
    );
    const reports = await sb.invoke([
      { type: 'identify', userId: 'u' },
      { type: 'track', event: 'slow' },
      { type: 'track', event: 'never' },
    ]);
    expect(reports.map((r) => r.outcome)).toEqual([
      { outcome: 'success' },
      { outcome: 'success' },
      expect.objectContaining({ outcome: 'retry', errorType: 'Timeout' }),
    ]);
    expect(reports[1]!.logs).toEqual(['finished slow']);
    expect(sb.rebuilds).toBe(0); // timed out in the isolate at its deadline, not by killing it
  });

  it('a memory bomb is stopped at the memory limit; invocations it held get Timeout', async () => {
    const sb = await hostile('const hoard = []; for (;;) hoard.push(new Array(1e5).fill(Math.random()));', {
      memoryMb: 32,
      timeoutMs: 10_000,
    });
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toMatchObject({ outcome: 'retry', errorType: 'Timeout' });
    expect(report!.outcome).toHaveProperty('message', expect.stringContaining('ran out of memory'));
    await expectRecovers(sb);
  });

  it('an unhandled promise rejection in one invocation does not fail the others', async () => {
    const sb = await hostile(`Promise.reject(new Error('nobody listens')); console.log('carried on');`);
    const reports = await sb.invoke([{ type: 'track' }, { type: 'identify', userId: 'u' }]);
    expect(reports.map((r) => r.outcome)).toEqual([{ outcome: 'success' }, { outcome: 'success' }]);
    expect(reports[0]!.logs).toEqual(['carried on']);
  });

  it('legitimate CPU work queued behind other micro-batches is not mistaken for a runaway', async () => {
    const sb = await load(
      `async function onTrack() { const end = Date.now() + 150; while (Date.now() < end) {} }`,
      { limits: { timeoutMs: 1000 } },
    );
    // Ten calls at once: the isolate runs them one after another, ~1.5 s in all, past the limit, while each
    // is well within it (room for a loaded machine descheduling the loop).
    const calls = Array.from({ length: 10 }, () => sb.invoke([{ type: 'track' }]));
    const reports = await Promise.all(calls);
    expect(reports.map(([r]) => r!.outcome)).toEqual(Array(10).fill({ outcome: 'success' }));
    expect(sb.rebuilds).toBe(0);
  });

  it('a runaway invocation affects only the function it belongs to', async () => {
    const bad = await hostile('while (true) {}');
    const good = await hostile('');
    const [badReport, goodReports] = await Promise.all([
      bad.invoke([{ type: 'track' }]),
      good.invoke([{ type: 'identify', userId: 'u' }]),
    ]);
    expect(badReport[0]!.outcome).toMatchObject({ errorType: 'Timeout' });
    expect(goodReports[0]!.outcome).toEqual({ outcome: 'success' });
  });
});

describe('isolation from the host', () => {
  it('constructor chains and Function("return this") reach only the isolate’s own globals', async () => {
    const sb = await hostile(`
      const viaFunction = Function('return this')();
      const viaCtor = (async () => {}).constructor.constructor('return this')();
      const viaProto = ({}).constructor.constructor('return typeof process + typeof require + typeof globalThis.process')();
      console.log(viaFunction === globalThis, viaCtor === globalThis, viaProto);
      const viaAsync = await fetch.constructor('return typeof process')();
      console.log(typeof viaFunction.process, typeof viaFunction.require, viaAsync);`);
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual(['true true undefinedundefinedundefined', 'undefined undefined undefined']);
    await expectRecovers(sb);
  });

  it('Error.prepareStackTrace exposes no host call sites', async () => {
    const sb = await hostile(`
      Error.prepareStackTrace = (err, frames) => frames.map((f) => {
        const fn = f.getFunction && f.getFunction();
        const self = f.getThis && f.getThis();
        return [typeof fn, self && typeof self.process, f.getFileName()].join(':');
      });
      let stack;
      try { await fetch('http://169.254.169.254/'); } catch (e) { stack = e.stack; }
      const inner = new Error('x').stack;
      console.log(JSON.stringify(stack), JSON.stringify(inner));
      console.log(typeof globalThis.process);`);
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    expect(report!.logs.join('\n')).not.toMatch(/node:|internal\/|\.ts|object:/);
    expect(report!.logs[1]).toBe('undefined');
    await expectRecovers(sb);
  });

  it('values returned to the host cannot pollute host prototypes', async () => {
    const sb = await load(`
      async function onBatch(events) {
        const evil = JSON.parse('{"__proto__": {"polluted": "yes"}, "status": 200}');
        Object.prototype.polluted = 'inside';
        return [evil, { status: 200, get errormessage() { throw new Error('getter'); } }, new Proxy({}, { get: () => 500 })];
      }
      async function onTrack() {
        JSON.stringify = () => '{"results":[{"ok":true,"__proto__":{"polluted":"yes"}}],"logs":[[]]}';
        Array.prototype.map = () => { throw new Error('broken'); };
        return { __proto__: { polluted: 'yes' }, constructor: { prototype: { polluted: 'yes' } } };
      }`);
    const batch = await sb.invokeBatch([{ type: 'track' }, { type: 'track' }, { type: 'track' }]);
    expect(batch.results.map((r) => r.outcome)).toEqual(['success', 'success', 'retry']);
    const [single] = await sb.invoke([{ type: 'track' }]);
    expect(single!.outcome).toEqual({ outcome: 'success' });
    // The dispatcher captured its intrinsics before user code ran, so it still works after onTrack broke them.
    const [again] = await sb.invoke([{ type: 'track' }]);
    expect(again!.outcome).toEqual({ outcome: 'success' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(Array.prototype.map.toString()).toContain('[native code]');
  });

  it('fetch to the metadata address and to loopback without permission throws inside the function', async () => {
    const sb = await hostile(`
      const results = [];
      for (const url of ['http://169.254.169.254/latest/meta-data/iam/', 'http://127.0.0.1:9/', 'http://localhost:9/']) {
        try { await fetch(url); results.push('reached'); } catch (e) { results.push(e.name + ': ' + (e.message.includes('refused') ? 'refused' : e.message)); }
      }
      console.log(results.join(' | '));`);
    const [report] = await sb.invoke([{ type: 'track' }]);
    expect(report!.logs).toEqual(['FetchError: refused | FetchError: refused | FetchError: refused']);
    expect(report!.requests.map((r) => r.status)).toEqual([0, 0, 0]);
    await expectRecovers(sb);
  });
});
