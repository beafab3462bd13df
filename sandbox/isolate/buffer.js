// Buffer: the subset of Node's Buffer that destination functions use (utf8, base64, base64url, hex,
// latin1), as a Uint8Array subclass.

import { decodeBytes, encodeString, normalizeEncoding } from './bytes.js';
import { isArray, Uint8ArrayCtor } from './intrinsics.js';

export class Buffer extends Uint8Array {
  static from(value, encodingOrOffset, length) {
    if (typeof value === 'string') return Buffer.fromBytes(encodeString(value, encodingOrOffset));
    if (value instanceof ArrayBuffer) {
      return new Buffer(value, encodingOrOffset ?? 0, length ?? value.byteLength - (encodingOrOffset ?? 0));
    }
    if (ArrayBuffer.isView(value)) {
      return Buffer.fromBytes(new Uint8ArrayCtor(value.buffer, value.byteOffset, value.byteLength).slice());
    }
    if (isArray(value)) return Buffer.fromBytes(new Uint8ArrayCtor(value));
    if (value && value.type === 'Buffer' && isArray(value.data))
      return Buffer.fromBytes(new Uint8ArrayCtor(value.data));
    throw new TypeError('Buffer.from: expected a string, Buffer, ArrayBuffer, array or array-like object');
  }
  static fromBytes(bytes) {
    return new Buffer(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  static alloc(size, fill) {
    const b = new Buffer(size);
    if (fill !== undefined) b.fill(typeof fill === 'string' ? fill.charCodeAt(0) : fill);
    return b;
  }
  static allocUnsafe(size) {
    return new Buffer(size);
  }
  static isBuffer(value) {
    return value instanceof Buffer;
  }
  static isEncoding(encoding) {
    try {
      normalizeEncoding(encoding);
      return true;
    } catch {
      return false;
    }
  }
  static byteLength(value, encoding) {
    if (typeof value === 'string') return encodeString(value, encoding).length;
    return value.byteLength;
  }
  static concat(list, totalLength) {
    const total = totalLength ?? list.reduce((n, b) => n + b.length, 0);
    const out = Buffer.alloc(total);
    let offset = 0;
    for (const b of list) {
      if (offset >= total) break;
      out.set(b.subarray(0, total - offset), offset);
      offset += b.length;
    }
    return out;
  }
  toString(encoding, start, end) {
    return decodeBytes(this.subarray(start ?? 0, end ?? this.length), encoding);
  }
  toJSON() {
    return { type: 'Buffer', data: Array.from(this) };
  }
  equals(other) {
    if (this.length !== other.length) return false;
    for (let i = 0; i < this.length; i++) if (this[i] !== other[i]) return false;
    return true;
  }
  write(string, offset = 0, encoding = 'utf8') {
    const bytes = encodeString(string, encoding).subarray(0, this.length - offset);
    this.set(bytes, offset);
    return bytes.length;
  }
  slice(start, end) {
    return this.subarray(start, end);
  }
  subarray(start, end) {
    const view = Uint8ArrayCtor.prototype.subarray.call(this, start, end);
    return new Buffer(view.buffer, view.byteOffset, view.length);
  }
}
Object.defineProperty(Buffer, Symbol.species, { value: Uint8Array });
