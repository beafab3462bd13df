// URLSearchParams in the sandbox against Node's own (test/helpers/parity.ts): malformed percent sequences
// combined pairwise, lone surrogates, '+', and every way of building, changing and printing the params.

import { describe, expect, it } from 'vitest';
import { expectParity, literal } from '../helpers/parity.js';
import { sandboxes } from '../helpers/sandbox.js';

const { load, logsOf } = sandboxes();

const PIECES = [
  '%',
  '%2',
  '%zz',
  '%ZZ',
  '%C3%A9',
  '%E9',
  '%C3',
  '%c3%a9',
  '%F0%9F%98%80',
  '%F0%9F',
  '%ED%A0%80',
  '%EF%BB%BF',
  '%00',
  '%25',
  '%%41',
  '%2B',
  '+',
  ' ',
  'a',
  'é',
  '=',
  '\ud800',
  '\udc00',
  '😀',
];

describe('URLSearchParams parity with Node', () => {
  it('decodes every pair of malformed, partial and valid percent sequences as Node does', async () => {
    const cases = PIECES.flatMap((a) =>
      PIECES.map((b) => {
        const query = literal(`k${a}=${b}${a}&${b}`);
        return `(() => { const p = new URLSearchParams(${query}); return [[...p].map(([k, v]) => k + '|' + v), p.toString()]; })()`;
      }),
    );
    expect(cases.length).toBeGreaterThan(500);
    await expectParity(load, cases);
  });

  it('names and values with lone surrogates, from every kind of init, and the methods', async () => {
    const cases = [
      "new URLSearchParams('?a=1&a=2&b=%20x+y').toString()",
      "new URLSearchParams('??a=1').toString()",
      "new URLSearchParams('a&b=&=c&&').toString()",
      "[...new URLSearchParams('a&b=&=c&&')]",
      "new URLSearchParams({ a: '\\ud800', '\\udc00': 'b' }).toString()",
      "[...new URLSearchParams({ a: '\\ud800' })]",
      "new URLSearchParams([['a', '\\ud800x'], ['b', 1]]).toString()",
      "new URLSearchParams([['a']])",
      "new URLSearchParams([['a', 'b', 'c']])",
      'new URLSearchParams([1])',
      "new URLSearchParams(new Map([['m', 'v']])).toString()",
      "new URLSearchParams(new URLSearchParams('x=1')).toString()",
      'new URLSearchParams({ n: 1, u: undefined, o: {} }).toString()',
      'new URLSearchParams(12).toString()',
      "(() => { const p = new URLSearchParams(); p.append('a\\ud800', 'b\\udc00'); return [p.get('a\\ud800'), p.has('a\\ufffd'), p.toString()]; })()",
      "(() => { const p = new URLSearchParams('a=1&b=2&a=3'); p.set('a', 'x'); return p.toString(); })()",
      "(() => { const p = new URLSearchParams('a=1&b=2&a=3'); p.delete('a'); return p.toString(); })()",
      "(() => { const p = new URLSearchParams('a=1&b=2&a=3'); p.delete('a', '3'); return p.toString(); })()",
      "(() => { const p = new URLSearchParams('a=1&b=2&a=3'); return [p.has('a', '3'), p.has('a', '4'), p.getAll('a'), p.get('z'), p.size]; })()",
      "(() => { const p = new URLSearchParams('z=1&a=2&z=0&A=3&é=4&e=5'); p.sort(); return p.toString(); })()",
      "(() => { const p = new URLSearchParams('b=1&a=2'); const out = []; p.forEach((v, k) => out.push(k + v)); return out; })()",
      "[...new URLSearchParams('b=1&a=2').keys()]",
      "[...new URLSearchParams('b=1&a=2').values()]",
      'new URLSearchParams({ s: "!\'()*-._~ &=+/?#%" }).toString()',
      "new URLSearchParams({ s: 'é€😀' }).toString()",
      "(() => { const u = new URL('https://x.test/p?a=%E9&b=1'); return [u.searchParams.get('a'), u.href]; })()",
      "(() => { const u = new URL('https://x.test/p?a=1'); u.searchParams.append('k', '\\ud800 +'); return [u.search, u.href]; })()",
      "(() => { const u = new URL('https://x.test/p?a=1'); u.search = '?b=%zz'; return [...u.searchParams]; })()",
      'URLSearchParams.name',
      'typeof URLSearchParams._reparse',
      'Object.prototype.toString.call(new URLSearchParams())',
    ];
    await expectParity(load, cases);
  });
});

describe('URL errors, as Node throws them', () => {
  it('an unparsable URL: TypeError, code ERR_INVALID_URL, its input and base as properties', async () => {
    const caught = (expr: string) =>
      `(() => { try { ${expr}; return 'no error'; } catch (e) { return [String(e), e.code, e.input, e.base, Object.keys(e)]; } })()`;
    await expectParity(load, [
      "new URL('x')",
      "new URL('x', 'y')",
      "new URL('http://[::1')",
      caught("new URL('x')"),
      caught("new URL('x', 'not a base')"),
      caught("new URL('http://exa mple.test/')"),
      caught("new URL('https://x.test/').href = 'nope'"),
      // Setters other than href ignore what they cannot use, as Node's do.
      "(() => { const u = new URL('https://x.test/p'); u.protocol = 'not a scheme'; u.port = 'x'; return u.href; })()",
      "[URL.canParse('x'), URL.canParse('/p', 'https://x.test'), URL.canParse('x', 'y')]",
      "new URL('/p?q=1#h', 'https://x.test/a/b').href",
    ]);
  });

  it("keeps its fields when user code puts setters for them on TypeError's prototype", async () => {
    const logs = await logsOf(`
      let calls = 0;
      for (const key of ['code', 'input', 'base'])
        Object.defineProperty(TypeError.prototype, key, { set() { calls++; throw new Error('hijacked'); }, configurable: true });
      const errors = [];
      try { new URL('x', 'y'); } catch (e) { errors.push([String(e), e.code, e.input, e.base]); }
      try { new URL('https://x.test/').href = 'nope'; } catch (e) { errors.push([String(e), e.code, e.input]); }
      console.log(JSON.stringify({ errors, calls }));`);
    expect(JSON.parse(logs[0]!)).toEqual({
      errors: [
        ['TypeError: Invalid URL', 'ERR_INVALID_URL', 'x', 'y'],
        ['TypeError [ERR_INVALID_URL]: Invalid URL', 'ERR_INVALID_URL', 'nope'],
      ],
      calls: 0,
    });
  });
});
