// Differential testing: the same snippets evaluated in the sandbox (a loaded function's handler) and in
// plain Node (this test process, whose Buffer, TextDecoder and URLSearchParams are Node's own), each
// result printed by the same `show` on both sides and compared exactly.

import { expect } from 'vitest';
import type { FunctionSandbox, SandboxOptions } from '../../sandbox/index.js';

/**
 * Prints a value so that two values print alike only when they are alike: the type, every byte of a
 * view and its class, -0, and for an error its class, Node's code and message.
 */
const SHOW = `
function show(v) {
  if (typeof v === 'string') return 'string ' + JSON.stringify(v);
  if (typeof v === 'number') return 'number ' + (Object.is(v, -0) ? '-0' : String(v));
  if (typeof v === 'bigint') return 'bigint ' + v;
  if (v === undefined || v === null || typeof v === 'boolean' || typeof v === 'symbol') return String(v);
  if (typeof v === 'function') return 'function ' + v.name;
  if (ArrayBuffer.isView(v)) {
    const kind = Buffer.isBuffer(v) ? 'Buffer' : Object.prototype.toString.call(v);
    const items = v instanceof DataView ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : v;
    return kind + '<' + Array.from(items, (x) => String(x)).join(' ') + '>';
  }
  if (v instanceof ArrayBuffer) return 'ArrayBuffer<' + Array.from(new Uint8Array(v)).join(' ') + '>';
  if (Array.isArray(v)) return '[' + v.map(show).join(', ') + ']';
  if (v instanceof Error) return thrown(v);
  return Object.prototype.toString.call(v) + ' ' + JSON.stringify(v);
}
function thrown(e) {
  if (!(e instanceof Error)) return 'throws ' + show(e);
  return 'throws ' + e.name + (e.code === undefined ? '' : ' ' + e.code) + ': ' + e.message;
}
function run(cases) {
  const out = [];
  for (const c of cases) {
    try {
      out.push(show(c()));
    } catch (e) {
      out.push(thrown(e));
    }
  }
  return out;
}
`;

/** Each case is a JavaScript expression; the harness evaluates it as `() => (expression)`. */
function casesSource(cases: readonly string[]): string {
  return `[\n${cases.map((c) => `() => (${c})`).join(',\n')}\n]`;
}

export function inNode(cases: readonly string[]): string[] {
  return new Function(`${SHOW}\nreturn run(${casesSource(cases)});`)() as string[];
}

export async function inSandbox(
  load: (source: string, options?: SandboxOptions) => Promise<FunctionSandbox>,
  cases: readonly string[],
): Promise<string[]> {
  const source = `${SHOW}\nasync function onTrack() {\n  for (const line of run(${casesSource(cases)})) console.log(line);\n}`;
  const sb = await load(source, { limits: { timeoutMs: 30_000, logBytes: 8 * 1024 * 1024 } });
  const [report] = await sb.invoke([{ type: 'track', event: 'Parity' }]);
  if (report!.outcome.outcome !== 'success')
    throw new Error(`harness failed: ${JSON.stringify(report!.outcome)}`);
  return report!.logs;
}

/** Runs the cases on both sides; every case must print the same, and each difference is shown with its case. */
export async function expectParity(
  load: (source: string, options?: SandboxOptions) => Promise<FunctionSandbox>,
  cases: readonly string[],
): Promise<void> {
  expect(cases.length).toBeGreaterThan(0);
  const node = inNode(cases);
  const sandbox = await inSandbox(load, cases);
  expect(sandbox).toHaveLength(cases.length);
  const differences = cases.flatMap((c, i) =>
    node[i] === sandbox[i] ? [] : [{ case: c, node: node[i], sandbox: sandbox[i] }],
  );
  expect(differences).toEqual([]);
}

/** A small seeded generator (mulberry32), so the random inputs are the same on every run and both sides. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(random: () => number, length: number): number[] {
  return Array.from({ length }, () => Math.floor(random() * 256));
}

/** A JavaScript string literal for `s`, lone surrogates included (JSON.stringify escapes them). */
export const literal = (s: string): string => JSON.stringify(s);
