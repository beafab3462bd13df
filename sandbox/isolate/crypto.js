// crypto: hashing, HMAC and randomness, performed by the host's crypto module. What the host allocates on
// a function's behalf is bounded (config.bounds), and its answers cross as latin1 strings that the isolate
// turns into bytes itself (see host-fetch.ts on why not as ArrayBuffers).

import { bufferOf, nodeBuffer } from './buffer.js';
import { encodeString, latin1Encode } from './bytes.js';
import { host, hostResult } from './host.js';
import {
  append,
  byteLengthOf,
  ErrorCtor,
  isInteger,
  isView,
  NumberCtor,
  objectFreeze,
  RangeErrorCtor,
  StringCtor,
  TypeErrorCtor,
  Uint8ArrayCtor,
} from './intrinsics.js';

function toBytes(data, encoding) {
  if (typeof data === 'string') return encodeString(data, encoding);
  if (data instanceof ArrayBuffer) return new Uint8ArrayCtor(data);
  if (isView(data)) return new Uint8ArrayCtor(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeErrorCtor('The "data" argument must be a string, Buffer, TypedArray or DataView');
}

function checkHashInput(bytes) {
  const max = host.config.bounds.hashInputBytes;
  if (bytes > max) throw new RangeErrorCtor(`crypto: at most ${max} bytes can be hashed in one digest`);
}

class Hash {
  #op;
  #algorithm;
  #key;
  #chunks = [];
  #bytes = 0;
  #done = false;
  constructor(op, algorithm, key) {
    this.#op = op;
    this.#algorithm = StringCtor(algorithm);
    this.#key = key;
    hostResult(host.crypto('check', op, this.#algorithm));
  }
  update(data, encoding) {
    if (this.#done) throw new ErrorCtor('Digest already called');
    const bytes = toBytes(data, encoding);
    checkHashInput(this.#bytes + bytes.byteLength);
    this.#bytes += bytes.byteLength;
    append(this.#chunks, bytes.slice());
    return this;
  }
  digest(encoding) {
    if (this.#done) throw new ErrorCtor('Digest already called');
    this.#done = true;
    const digest = hostResult(
      host.crypto(this.#op, this.#algorithm, nodeBuffer().concat(this.#chunks), this.#key),
    );
    const out = bufferOf(latin1Encode(digest));
    return encoding === undefined || encoding === 'buffer' ? out : out.toString(encoding);
  }
}

function randomBinary(n) {
  return hostResult(host.crypto('randomBytes', n));
}

/** Web Crypto's error for a request over 65,536 bytes (a DOMException in browsers). */
function quotaExceeded(bytes, max) {
  const err = new ErrorCtor(
    `Failed to execute 'getRandomValues' on 'Crypto': The ArrayBufferView's byte length (${bytes}) exceeds the number of bytes of entropy available via this API (${max}).`,
  );
  err.name = 'QuotaExceededError';
  err.code = 22;
  return err;
}

const INTEGER_ARRAYS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
];

export const crypto = objectFreeze({
  createHash: (algorithm) => new Hash('hash', algorithm, null),
  createHmac: (algorithm, key) => {
    const k = toBytes(key).slice();
    checkHashInput(k.byteLength);
    return new Hash('hmac', algorithm, k);
  },
  randomBytes: (size) => {
    const n = NumberCtor(size);
    const max = host.config.bounds.randomBytes;
    if (!isInteger(n) || n < 0 || n > max) throw new RangeErrorCtor(`randomBytes: size must be 0..${max}`);
    return bufferOf(latin1Encode(randomBinary(n)));
  },
  randomUUID: () => hostResult(host.crypto('randomUUID')),
  getRandomValues: (array) => {
    let integer = false;
    for (let i = 0; i < INTEGER_ARRAYS.length; i++) if (array instanceof INTEGER_ARRAYS[i]) integer = true;
    if (!integer || !isView(array)) {
      throw new TypeErrorCtor(
        "Failed to execute 'getRandomValues' on 'Crypto': The provided ArrayBufferView is not an integer array type.",
      );
    }
    // The typed array's own length, not a `byteLength` user code may have defined on it.
    const bytes = byteLengthOf(array);
    const max = host.config.bounds.randomBytes;
    if (bytes > max) throw quotaExceeded(bytes, max);
    new Uint8ArrayCtor(array.buffer, array.byteOffset, bytes).set(latin1Encode(randomBinary(bytes)));
    return array;
  },
});
