// crypto: hashing, HMAC and randomness, performed by the host's crypto module.

import { Buffer } from './buffer.js';
import { encodeString } from './bytes.js';
import { host, hostResult } from './host.js';
import { NumberCtor, objectFreeze, StringCtor, Uint8ArrayCtor } from './intrinsics.js';

function toBytes(data, encoding) {
  if (typeof data === 'string') return encodeString(data, encoding);
  if (data instanceof ArrayBuffer) return new Uint8ArrayCtor(data);
  if (ArrayBuffer.isView(data)) return new Uint8ArrayCtor(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('The "data" argument must be a string, Buffer, TypedArray or DataView');
}

class Hash {
  #op;
  #algorithm;
  #key;
  #chunks = [];
  #done = false;
  constructor(op, algorithm, key) {
    this.#op = op;
    this.#algorithm = StringCtor(algorithm);
    this.#key = key;
    hostResult(host.crypto('check', op, this.#algorithm));
  }
  update(data, encoding) {
    if (this.#done) throw new Error('Digest already called');
    this.#chunks.push(toBytes(data, encoding).slice());
    return this;
  }
  digest(encoding) {
    if (this.#done) throw new Error('Digest already called');
    this.#done = true;
    const out = Buffer.from(
      hostResult(host.crypto(this.#op, this.#algorithm, Buffer.concat(this.#chunks), this.#key)),
    );
    return encoding === undefined || encoding === 'buffer' ? out : out.toString(encoding);
  }
}

export const crypto = objectFreeze({
  createHash: (algorithm) => new Hash('hash', algorithm, null),
  createHmac: (algorithm, key) => new Hash('hmac', algorithm, toBytes(key).slice()),
  randomBytes: (size) => {
    const n = NumberCtor(size);
    if (!Number.isInteger(n) || n < 0 || n > 65536)
      throw new RangeError('randomBytes: size must be 0..65536');
    return Buffer.from(hostResult(host.crypto('randomBytes', n)));
  },
  randomUUID: () => hostResult(host.crypto('randomUUID')),
  getRandomValues: (array) => {
    const bytes = hostResult(host.crypto('randomBytes', array.byteLength));
    new Uint8ArrayCtor(array.buffer, array.byteOffset, array.byteLength).set(bytes);
    return array;
  },
});
