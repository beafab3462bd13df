// setInterval and clearInterval: Node's semantics, bounded like setTimeout, and ended with the
// invocation that set them (an invocation's timers never outlive it).

import { describe, expect, it } from 'vitest';
import { sandboxes } from '../helpers/sandbox.js';

const { load, logsOf } = sandboxes();

describe('setInterval', () => {
  it('runs its callback with its arguments until cleared, from inside or outside', async () => {
    const logs = await logsOf(`
      const seen = [];
      await new Promise((done) => {
        const id = setInterval((a, b) => {
          seen.push(a + b);
          if (seen.length === 3) { clearInterval(id); done(); }
        }, 1, 'x', 'y');
      });
      let other = 0;
      const id2 = setInterval(() => other++, 1);
      await new Promise((r) => setTimeout(r, 30));
      clearTimeout(id2);
      const frozen = other;
      await new Promise((r) => setTimeout(r, 30));
      console.log(seen.join(','), frozen > 0, other === frozen, setInterval.name, clearInterval.name);`);
    expect(logs).toEqual(['xy,xy,xy true true setInterval clearInterval']);
  });

  it('clearInterval clears a timeout too, as in Node, and ignores unknown ids', async () => {
    const logs = await logsOf(`
      let fired = false;
      const t = setTimeout(() => { fired = true; }, 1);
      clearInterval(t);
      clearInterval(12345); clearInterval(undefined);
      await new Promise((r) => setTimeout(r, 30));
      console.log(fired);`);
    expect(logs).toEqual(['false']);
  });

  it('an exception in the callback is logged and the interval goes on', async () => {
    const logs = await logsOf(`
      let n = 0;
      await new Promise((done) => {
        const id = setInterval(() => { n++; if (n === 2) { clearInterval(id); done(); } if (n === 1) throw new Error('boom'); }, 1);
      });
      console.log('runs', n);`);
    expect(logs[0]).toMatch(/^error: Uncaught exception in setInterval callback: Error: boom/);
    expect(logs.at(-1)).toBe('runs 2');
  });

  it('refuses a callback that is not a function', async () => {
    const logs = await logsOf(`
      try { setInterval('code', 1); } catch (e) { console.log(e.name, e.message); }`);
    expect(logs).toEqual(['TypeError The "callback" argument must be of type function']);
  });

  it('counts against the pending-timer bound of its invocation', async () => {
    const logs = await logsOf(`
      const ids = [];
      try { for (let i = 0; i < 2000; i++) ids.push(setInterval(() => {}, 60000)); }
      catch (e) { console.log(e.name, ids.length, e.message); }
      for (const id of ids) clearInterval(id);
      ids.push(setInterval(() => {}, 60000));
      clearInterval(ids.at(-1));
      console.log('after clearing', ids.length);`);
    expect(logs[0]).toMatch(
      /^RangeError 1000 setInterval: at most 1000 timers can be pending in one invocation$/,
    );
    expect(logs[1]).toBe('after clearing 1001');
  });

  it("ends with the invocation that set it: its callback never runs after the invocation's result", async () => {
    const sb = await load(`
      let ticks = 0;
      async function onTrack(event) {
        if (event.event === 'start') { setInterval(() => { ticks++; }, 1); return; }
        const before = ticks;
        await new Promise((r) => setTimeout(r, 50));
        console.log(before === ticks, ticks < 1000);
      }`);
    const [start] = await sb.invoke([{ type: 'track', event: 'start' }]);
    expect(start!.outcome).toEqual({ outcome: 'success' });
    const [check] = await sb.invoke([{ type: 'track', event: 'check' }]);
    expect(check!.logs).toEqual(['true true']);
  });

  it('set by top-level code, it lives on between invocations (within the per-function bound)', async () => {
    const sb = await load(`
      let ticks = 0;
      setInterval(() => { ticks++; }, 1);
      async function onTrack() {
        const before = ticks;
        while (ticks < before + 3) await new Promise((r) => setTimeout(r, 5));
        console.log('ticking');
      }`);
    const [report] = await sb.invoke([{ type: 'track', event: 'x' }]);
    expect(report!.logs).toEqual(['ticking']);
  });
});
