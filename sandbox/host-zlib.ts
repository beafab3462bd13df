// zlib's host half: Node's own zlib, one synchronous call per compression or decompression, its input
// size-capped and its output capped by maxOutputLength, so a small bomb cannot inflate into the host's
// memory. Brotli's compression is far slower per byte than deflate's, so its input has a smaller cap.

import zlib from 'node:zlib';
import { BOUNDS } from './bounds.js';

const OPERATIONS = {
  gzipSync: zlib.gzipSync,
  gunzipSync: zlib.gunzipSync,
  deflateSync: zlib.deflateSync,
  inflateSync: zlib.inflateSync,
  deflateRawSync: zlib.deflateRawSync,
  inflateRawSync: zlib.inflateRawSync,
  unzipSync: zlib.unzipSync,
  brotliCompressSync: zlib.brotliCompressSync,
  brotliDecompressSync: zlib.brotliDecompressSync,
} as const;

/** Brotli at its default quality (11) compresses about 1 MiB a second. */
const BROTLI_INPUT_BYTES = 1024 * 1024;

/** The names the isolate's zlib module offers (each also as a callback form without `Sync`). */
export const ZLIB_OPERATIONS = Object.keys(OPERATIONS);

/** Plain option values only (level, windowBits, memLevel, strategy, chunkSize, params of numbers). */
function options(value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (value === null || typeof value !== 'object') return out;
  for (const [k, v] of Object.entries(value)) {
    if (k === 'params' && v !== null && typeof v === 'object') {
      const params: Record<string, number> = {};
      for (const [pk, pv] of Object.entries(v)) if (typeof pv === 'number') params[pk] = pv;
      out[k] = params;
    } else if (typeof v === 'number' || typeof v === 'boolean') {
      out[k] = v;
    }
  }
  return out;
}

/** The ivm.Callback: (op, data, options) → latin1 bytes | { error, name, code } | constants. */
export function hostZlib(op: string, data?: unknown, opts?: unknown): unknown {
  try {
    if (op === 'constants') return { ...zlib.constants };
    if (!Object.hasOwn(OPERATIONS, op)) throw new TypeError(`unsupported zlib operation ${op}`);
    const name = op as keyof typeof OPERATIONS;
    const size =
      typeof data === 'string' ? data.length : data instanceof Uint8Array ? data.buffer.byteLength : 0;
    const max = name === 'brotliCompressSync' ? BROTLI_INPUT_BYTES : BOUNDS.cryptoInputBytes;
    if (size > max) throw new RangeError(`zlib: ${name} takes at most ${max} bytes in one call`);
    const o = options(opts);
    o.maxOutputLength = Math.min(Number(o.maxOutputLength) || BOUNDS.zlibOutputBytes, BOUNDS.zlibOutputBytes);
    return OPERATIONS[name](data as zlib.InputType, o as never).toString('latin1');
  } catch (err) {
    const e = err as Error & { code?: unknown; errno?: unknown };
    return {
      error: e instanceof Error ? e.message : String(err),
      name: e instanceof Error ? e.name : 'Error',
      ...(typeof e.code === 'string' ? { code: e.code } : {}),
      ...(typeof e.errno === 'number' ? { errno: e.errno } : {}),
    };
  }
}
