// TextDecoder and TextEncoder in the sandbox against Node's own (test/helpers/parity.ts): every label
// functions meet × valid, truncated, invalid and random bytes, fatal, ignoreBOM, and streams cut at every
// position.

import { describe, it } from 'vitest';
import { expectParity, literal, randomBytes, seeded } from '../helpers/parity.js';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();

const LABELS = [
  undefined,
  'utf-8',
  'UTF-8',
  ' utf8 ',
  'unicode-1-1-utf-8',
  'utf-16le',
  'utf-16',
  'ucs-2',
  'utf-16be',
  'latin1',
  'iso-8859-1',
  'ascii',
  'us-ascii',
  'windows-1252',
  'cp1252',
  'nope',
  '',
];

const random = seeded(1252);
const INPUTS = [
  [],
  [0x41, 0x42],
  [0xef, 0xbb, 0xbf, 0x41],
  [0xef, 0xbb, 0xbf],
  [0xef, 0xbb],
  [0xff, 0xfe, 0x41, 0x00],
  [0xfe, 0xff, 0x00, 0x41],
  [0xc3, 0xa9, 0xe2, 0x82, 0xac],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xf0, 0x9f, 0x98, 0x80],
  [0xed, 0xa0, 0x80],
  [0xc0, 0xaf],
  [0x80, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0x3d, 0xd8, 0x00, 0xde],
  [0x00, 0xd8, 0x41, 0x00],
  [0x00, 0xdc],
  [0x41],
  [0xff],
  [0xff, 0x41],
  [0xff, 0xff, 0xfe],
  [0x80, 0x9f, 0xa0, 0xe9, 0xff],
  ...Array.from({ length: 10 }, (_, i) => randomBytes(random, 5 + i * 7)),
];

const labelArg = (l: string | undefined) => (l === undefined ? '' : literal(l));

describe('TextDecoder parity with Node', () => {
  it('every label × every input, plain, fatal and ignoreBOM', async () => {
    const cases = LABELS.flatMap((l) => [
      `new TextDecoder(${labelArg(l)}).encoding`,
      ...INPUTS.flatMap((b) => [
        `new TextDecoder(${labelArg(l)}).decode(new Uint8Array([${b}]))`,
        `new TextDecoder(${labelArg(l) || 'undefined'}, { fatal: true }).decode(new Uint8Array([${b}]))`,
        `new TextDecoder(${labelArg(l) || 'undefined'}, { ignoreBOM: true }).decode(new Uint8Array([${b}]))`,
      ]),
    ]);
    await expectParity(load, cases);
  });

  it('streams cut at every position decode as the whole does', async () => {
    const streamed = [
      [0xef, 0xbb, 0xbf, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, 0x41],
      [0xe2, 0x82, 0xac, 0xe2, 0x82],
      [0xff, 0xfe, 0x3d, 0xd8, 0x00, 0xde, 0x41],
    ];
    const cases: string[] = [];
    for (const label of ['utf-8', 'utf-16le'])
      for (const bytes of streamed)
        for (let cut = 0; cut <= bytes.length; cut++)
          for (const fatal of [false, true])
            cases.push(
              `(() => { const d = new TextDecoder('${label}', { fatal: ${fatal} }); const b = new Uint8Array([${bytes}]); return [d.decode(b.subarray(0, ${cut}), { stream: true }), d.decode(b.subarray(${cut}))]; })()`,
            );
    cases.push(
      '(() => { const d = new TextDecoder(); return [d.decode(new Uint8Array([0xe2]), { stream: true }), d.decode(new Uint8Array([0x82]), { stream: true }), d.decode()]; })()',
      '(() => { const d = new TextDecoder(); d.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])); return d.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x42])); })()',
      "(() => { const d = new TextDecoder('latin1', { ignoreBOM: true }); return [d.decode(new Uint8Array([0xff, 0x41]), { stream: true }), d.decode(new Uint8Array([0xff, 0x41]))]; })()",
      "(() => { const d = new TextDecoder('latin1', { ignoreBOM: true }); return [d.decode(new Uint8Array([0x41])), d.decode(new Uint8Array([0xff, 0x41])), d.decode(new Uint8Array([0xff]), { stream: true }), d.decode(new Uint8Array([0xff]))]; })()",
      "(() => { const d = new TextDecoder('utf-8', { fatal: true }); try { d.decode(new Uint8Array([0xe2]), { stream: false }); } catch {} return d.decode(new Uint8Array([0x41])); })()",
    );
    await expectParity(load, cases);
  });

  it('inputs of every view and buffer kind, and what it refuses', async () => {
    const cases = [
      'new TextDecoder().decode(new Uint8Array([104, 105]).buffer)',
      'new TextDecoder().decode(new DataView(new Uint8Array([0, 104, 105]).buffer, 1))',
      'new TextDecoder().decode(new Uint16Array([0x6968]))',
      "new TextDecoder().decode(Buffer.from('héllo'))",
      "new TextDecoder().decode(Buffer.from('héllo').subarray(1, 3))",
      'new TextDecoder().decode()',
      'new TextDecoder().decode(undefined)',
      "new TextDecoder().decode('abc')",
      'new TextDecoder().decode(null)',
      'new TextDecoder().decode([104])',
      'new TextDecoder().fatal',
      'new TextDecoder(undefined, { fatal: 1 }).fatal',
      "new TextDecoder('utf-8', { ignoreBOM: true }).ignoreBOM",
      'Object.prototype.toString.call(new TextDecoder())',
      'TextDecoder.name',
    ];
    await expectParity(load, cases);
  });
});

describe('TextEncoder parity with Node', () => {
  it('encode and encodeInto of every kind of string', async () => {
    const strings = ['', 'abc', 'héllo', '€', '😀', '\ud800', 'a\udc00', '\ud83d\ude00x', 'x'.repeat(40)];
    const cases = strings.flatMap((s) => [
      `new TextEncoder().encode(${literal(s)})`,
      ...[0, 1, 2, 3, 4, 5].map(
        (n) =>
          `(() => { const d = new Uint8Array(${n}); const r = new TextEncoder().encodeInto(${literal(s)}, d); return [r.read, r.written, d]; })()`,
      ),
    ]);
    cases.push('new TextEncoder().encoding', 'new TextEncoder().encode()', 'new TextEncoder().encode(12)');
    await expectParity(load, cases);
  });
});
