// Globals against Node's own, snippet by snippet (test/helpers/parity.ts): lodash with Buffers, the
// Timeout objects timers return, the class names user code prints; and console.log of a Buffer against
// Node's util.format.

import { createHash, createSecretKey } from 'node:crypto';
import { format } from 'node:util';
import lodash from 'lodash';
import { beforeAll, describe, expect, it } from 'vitest';
import { hostTimers } from '../helpers/containment.js';
import { expectParity } from '../helpers/parity.js';
import { sandboxes } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

const { load, logsOf } = sandboxes();

beforeAll(() => {
  // Segment's runtime has lodash as the global `_`: so does this process's side of the comparison.
  (globalThis as { _?: unknown })._ = lodash;
});

describe('lodash knows Buffers, as when Node loads it', () => {
  it('isBuffer, isEqual, cloneDeep, isEmpty, keys and friends', async () => {
    await expectParity(load, [
      "_.isBuffer(Buffer.from('a'))",
      '_.isBuffer(new Uint8Array(1))',
      "_.isEqual(Buffer.from('ab'), Buffer.from('ab'))",
      "_.isEqual(Buffer.from('ab'), Buffer.from('ac'))",
      "_.isEqual(Buffer.from('ab'), new Uint8Array([97, 98]))",
      "_.cloneDeep(Buffer.from('ab'))",
      "_.cloneDeep({ b: Buffer.from('xyz') }).b",
      "_.clone(Buffer.from('ab'))",
      '_.isEmpty(Buffer.alloc(0))',
      '_.isEmpty(Buffer.alloc(2))',
      "_.isTypedArray(Buffer.from('a'))",
      "_.isArrayLike(Buffer.from('a'))",
      "_.toArray(Buffer.from('ab'))",
      "_.keys(Buffer.from('ab'))",
      "_.size(Buffer.from('abc'))",
      "_.isPlainObject(Buffer.from('a'))",
      "_.merge({}, { b: Buffer.from('q') }).b",
      "_.isString('x') && _.VERSION === '" + lodash.VERSION + "'",
    ]);
  });
});

describe('timers return a Timeout, as in Node', () => {
  it('with ref, unref, hasRef, refresh, close and a number as its primitive', async () => {
    const withTimer = (body: string) =>
      `(() => { const t = setTimeout(() => {}, 1e6); try { return ${body}; } finally { clearTimeout(t); } })()`;
    await expectParity(load, [
      withTimer('typeof t'),
      withTimer('t.constructor.name'),
      withTimer('typeof +t'),
      withTimer('Number.isInteger(+t) && +t > 0'),
      withTimer('String(t) === String(+t)'),
      withTimer('[t.hasRef(), t.unref() === t, t.hasRef(), t.ref() === t, t.hasRef()]'),
      withTimer('t.refresh() === t'),
      withTimer("typeof t[Symbol.toPrimitive] + ' ' + typeof t.close"),
      '(() => { const t = setInterval(() => {}, 1e6); const r = [t.constructor.name, typeof +t]; clearInterval(t); return r; })()',
      '(() => { const t = setTimeout(() => {}, 1e6); return t.close() === t; })()',
      'clearTimeout(undefined)',
      "clearTimeout('nothing')",
      'clearTimeout({})',
    ]);
  });

  it('clearTimeout takes the Timeout, its number, or that number as a string; refresh starts the wait over', async () => {
    const logs = await logsOf(`
      const fired = [];
      const a = setTimeout(() => fired.push('a'), 1);
      const b = setTimeout(() => fired.push('b'), 1);
      const c = setTimeout(() => fired.push('c'), 1);
      const d = setInterval(() => fired.push('d'), 1);
      clearTimeout(a); clearTimeout(+b); clearTimeout(String(+c)); clearInterval(+d);
      const refreshed = setTimeout(() => fired.push('refreshed'), 20);
      refreshed.refresh().unref();
      await new Promise((r) => setTimeout(r, 60));
      console.log(fired.join(',') || 'none');`);
    expect(logs).toEqual(['refreshed']);
  });

  it('a timer refreshed 10,000 times fires once, and leaves no host timers behind', async () => {
    const baseline = hostTimers();
    const logs = await logsOf(`
      let fired = 0;
      const t = setTimeout(() => fired++, 5);
      for (let i = 0; i < 10000; i++) t.refresh();
      await new Promise((r) => setTimeout(r, 50));
      const pending = setTimeout(() => {}, 1e9);
      for (let i = 0; i < 10000; i++) pending.refresh();
      const forged = { [Symbol.toPrimitive]: () => +pending };
      clearTimeout(forged);
      console.log(fired, pending.hasRef());`);
    expect(logs).toEqual(['1 true']);
    await waitFor('the refreshed timers’ host timers to end', () => hostTimers() - baseline < 20);
  });
});

describe('names user code sees', () => {
  it('crypto classes are named as Node names them', async () => {
    const logs = await logsOf(`
      console.log(crypto.createHash('md5').constructor.name, crypto.createSecretKey(Buffer.from('k')).constructor.name);`);
    expect(logs).toEqual([
      `${createHash('md5').constructor.name} ${createSecretKey(Buffer.from('k')).constructor.name}`,
    ]);
  });
});

describe('console.log of a Buffer, as Node prints it', () => {
  it('its bytes in hex, the first 50 of them', async () => {
    const cases = [
      "Buffer.from('ab')",
      'Buffer.alloc(0)',
      'Buffer.alloc(50, 255)',
      'Buffer.alloc(51)',
      'Buffer.alloc(300, 7)',
    ];
    const logs = await logsOf(`
      for (const b of [${cases.join(', ')}]) console.log(b);
      console.log('x', Buffer.from('a'), 'y');`);
    const node = cases.map((c) => format(new Function(`return ${c}`)()));
    expect(logs).toEqual([...node, format('x', Buffer.from('a'), 'y')]);
  });
});
