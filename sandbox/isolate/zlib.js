// zlib: Node's zlib, performed by the host (sandbox/host-zlib.ts), synchronous and callback forms. The
// global is made on first use (see libraries.js); inputs are checked against the host's bound before
// they are copied.

import { nodeBuffer } from './buffer.js';
import { host } from './host.js';
import {
  ErrorCtor,
  isView,
  objectFreeze,
  RangeErrorCtor,
  resolved,
  TypeErrorCtor,
  Uint8ArrayCtor,
  viewByteLength,
  viewCopy,
  whenSettled,
} from './intrinsics.js';

const NAMES = [
  'gzip',
  'gunzip',
  'deflate',
  'inflate',
  'deflateRaw',
  'inflateRaw',
  'unzip',
  'brotliCompress',
  'brotliDecompress',
];

const ERRORS = { TypeError: TypeErrorCtor, RangeError: RangeErrorCtor };

function checkSize(size) {
  const max = host.config.bounds.cryptoInputBytes;
  if (size > max) throw new RangeErrorCtor(`zlib: one call takes at most ${max} bytes`);
}

/** The input as it crosses: a string, or a fresh copy of exactly the view's bytes (see viewCopy). */
function input(value) {
  if (typeof value === 'string') {
    checkSize(value.length);
    return value;
  }
  if (value instanceof ArrayBuffer) {
    checkSize(value.byteLength);
    return viewCopy(new Uint8ArrayCtor(value));
  }
  if (isView(value)) {
    checkSize(viewByteLength(value));
    return viewCopy(value);
  }
  const err = new TypeErrorCtor(
    'The "buffer" argument must be of type string or an instance of Buffer, TypedArray, DataView, or ArrayBuffer.',
  );
  err.code = 'ERR_INVALID_ARG_TYPE';
  throw err;
}

function run(op, data, options) {
  const bytes = input(data);
  const value = host.zlib(
    op,
    bytes,
    options !== null && typeof options === 'object' ? { ...options } : undefined,
  );
  if (value !== null && typeof value === 'object') {
    const err = new (ERRORS[value.name] ?? ErrorCtor)(value.error);
    if (value.code !== undefined) err.code = value.code;
    if (value.errno !== undefined) err.errno = value.errno;
    throw err;
  }
  return nodeBuffer().from(value, 'latin1');
}

export function makeZlib() {
  const zlib = { constants: objectFreeze(host.zlib('constants')) };
  for (const name of NAMES) {
    const op = `${name}Sync`;
    zlib[op] = (data, options) => run(op, data, options);
    // The callback form: the result reaches the callback on a later turn, as Node's thread pool does.
    zlib[name] = (data, options, callback) => {
      const cb = typeof options === 'function' ? options : callback;
      const opts = typeof options === 'function' ? undefined : options;
      if (typeof cb !== 'function')
        throw new TypeErrorCtor('The "callback" argument must be of type function.');
      let result;
      let error = null;
      try {
        result = run(op, data, opts);
      } catch (err) {
        error = err;
      }
      whenSettled(resolved(undefined), () => (error ? cb(error) : cb(null, result)));
    };
  }
  return objectFreeze(zlib);
}
