// Bytes and text: UTF-8, base64, hex and latin1 codecs, TextEncoder/TextDecoder (UTF-8), btoa/atob.

import {
  decodeUriComponent,
  escapeLatin1,
  fromCharCode,
  MapCtor,
  regexpTest,
  StringCtor,
  Uint8ArrayCtor,
} from './intrinsics.js';

export function utf8Encode(str) {
  const out = [];
  for (let i = 0; i < str.length; i++) {
    let c = str.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
      const d = str.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else c = 0xfffd;
    } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8ArrayCtor(out);
}

export function utf8Decode(bytes) {
  let out = '';
  let chunk = [];
  const flush = () => {
    out += fromCharCode.apply(null, chunk);
    chunk = [];
  };
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    let c = 0xfffd;
    let n = 1;
    if (b < 0x80) c = b;
    else if (b >= 0xc2 && b < 0xe0 && (bytes[i + 1] & 0xc0) === 0x80) {
      c = ((b & 31) << 6) | (bytes[i + 1] & 63);
      n = 2;
    } else if (b >= 0xe0 && b < 0xf0 && (bytes[i + 1] & 0xc0) === 0x80 && (bytes[i + 2] & 0xc0) === 0x80) {
      c = ((b & 15) << 12) | ((bytes[i + 1] & 63) << 6) | (bytes[i + 2] & 63);
      n = 3;
      if (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)) c = 0xfffd;
    } else if (
      b >= 0xf0 &&
      b < 0xf5 &&
      (bytes[i + 1] & 0xc0) === 0x80 &&
      (bytes[i + 2] & 0xc0) === 0x80 &&
      (bytes[i + 3] & 0xc0) === 0x80
    ) {
      c = ((b & 7) << 18) | ((bytes[i + 1] & 63) << 12) | ((bytes[i + 2] & 63) << 6) | (bytes[i + 3] & 63);
      n = 4;
      if (c < 0x10000 || c > 0x10ffff) c = 0xfffd;
    }
    if (c >= 0x10000) {
      c -= 0x10000;
      chunk.push(0xd800 + (c >> 10), 0xdc00 + (c & 1023));
    } else chunk.push(c);
    if (chunk.length > 8192) flush();
    i += n;
  }
  flush();
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new MapCtor();
for (let i = 0; i < 64; i++) B64_INDEX.set(B64[i], i);
B64_INDEX.set('-', 62);
B64_INDEX.set('_', 63);

export function base64Encode(bytes, url) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    out += i + 1 < bytes.length ? B64[(n >> 6) & 63] : url ? '' : '=';
    out += i + 2 < bytes.length ? B64[n & 63] : url ? '' : '=';
  }
  return url ? out.replace(/\+/g, '-').replace(/\//g, '_') : out;
}

/** Lenient like Node's Buffer: skips characters outside the alphabet, stops at padding. */
export function base64Decode(str) {
  const out = [];
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < str.length; i++) {
    const ch = str[i];
    if (ch === '=') break;
    const v = B64_INDEX.get(ch);
    if (v === undefined) continue;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return new Uint8ArrayCtor(out);
}

function hexEncode(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
  return out;
}

function hexDecode(str) {
  const out = [];
  for (let i = 0; i + 1 < str.length; i += 2) {
    const v = Number.parseInt(str.slice(i, i + 2), 16);
    if (Number.isNaN(v)) break;
    out.push(v);
  }
  return new Uint8ArrayCtor(out);
}

export function latin1Encode(str) {
  const out = new Uint8ArrayCtor(str.length);
  for (let i = 0; i < str.length; i++) out[i] = str.charCodeAt(i) & 0xff;
  return out;
}

const NON_ASCII = /[\u0080-\uffff]/;

/**
 * The UTF-8 text of bytes held as a latin1 string (how bodies and digests cross from the host). ASCII is
 * the same in both; other text goes through the engine's own decoder, or ours when it is not valid UTF-8.
 */
export function binaryToText(binary) {
  if (!regexpTest(NON_ASCII, binary)) return binary;
  try {
    return decodeUriComponent(escapeLatin1(binary));
  } catch {
    return utf8Decode(latin1Encode(binary));
  }
}

export function latin1Decode(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) out += fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  return out;
}

export function normalizeEncoding(encoding) {
  const e = StringCtor(encoding ?? 'utf8').toLowerCase();
  if (e === 'utf8' || e === 'utf-8') return 'utf8';
  if (e === 'base64' || e === 'base64url' || e === 'hex') return e;
  if (e === 'latin1' || e === 'binary' || e === 'ascii') return 'latin1';
  throw new TypeError(`Unknown encoding: ${encoding}`);
}

export function encodeString(str, encoding) {
  switch (normalizeEncoding(encoding)) {
    case 'utf8':
      return utf8Encode(str);
    case 'base64':
    case 'base64url':
      return base64Decode(str);
    case 'hex':
      return hexDecode(str);
    default:
      return latin1Encode(str);
  }
}

export function decodeBytes(bytes, encoding) {
  switch (normalizeEncoding(encoding)) {
    case 'utf8':
      return utf8Decode(bytes);
    case 'base64':
      return base64Encode(bytes, false);
    case 'base64url':
      return base64Encode(bytes, true);
    case 'hex':
      return hexEncode(bytes);
    default:
      return latin1Decode(bytes);
  }
}

export class TextEncoder {
  get encoding() {
    return 'utf-8';
  }
  encode(input = '') {
    return utf8Encode(StringCtor(input));
  }
}

export class TextDecoder {
  constructor(label = 'utf-8') {
    const l = StringCtor(label).toLowerCase();
    if (l !== 'utf-8' && l !== 'utf8')
      throw new RangeError(`TextDecoder: only utf-8 is supported, not "${label}"`);
  }
  get encoding() {
    return 'utf-8';
  }
  decode(input) {
    if (input === undefined) return '';
    if (input instanceof ArrayBuffer) return utf8Decode(new Uint8ArrayCtor(input));
    return utf8Decode(new Uint8ArrayCtor(input.buffer, input.byteOffset, input.byteLength));
  }
}

export function btoa(data) {
  const s = StringCtor(data);
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 255)
      throw new Error('btoa: the string contains characters outside of the Latin1 range');
  }
  return base64Encode(latin1Encode(s), false);
}

export function atob(data) {
  const s = StringCtor(data).replace(/[\t\n\f\r ]/g, '');
  if (/[^A-Za-z0-9+/=]/.test(s) || s.length % 4 === 1)
    throw new Error('atob: the string is not correctly encoded');
  return latin1Decode(base64Decode(s));
}
