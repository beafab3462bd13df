// Bytes and text: UTF-8, base64 and latin1 codecs for the sandbox's own crossings, TextEncoder, btoa/atob.
// Buffer's encodings are the buffer package's (buffer.js); TextDecoder and UTF-8 decoding are text-decoder.js.

import { nodeBuffer } from './buffer.js';
import {
  decodeUriComponent,
  escapeLatin1,
  fromCharCode,
  MapCtor,
  regexpTest,
  StringCtor,
  Uint8ArrayCtor,
} from './intrinsics.js';
import { utf8Decode } from './text-decoder.js';

export { utf8Decode };

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

/** A string's bytes in one of Buffer's encodings (crypto's `update(string, encoding)`). */
export const encodeString = (str, encoding) => nodeBuffer().from(str, encoding);

export class TextEncoder {
  get encoding() {
    return 'utf-8';
  }
  encode(input = '') {
    return utf8Encode(StringCtor(input));
  }
  /** Whole characters only, as the standard says: a character that does not fit is not split. */
  encodeInto(source, destination) {
    if (!(destination instanceof Uint8ArrayCtor))
      throw new TypeError('The "dest" argument must be an instance of Uint8Array.');
    const s = StringCtor(source);
    let read = 0;
    let written = 0;
    while (read < s.length) {
      const c = s.codePointAt(read);
      const units = c > 0xffff ? 2 : 1;
      const bytes = utf8Encode(s.slice(read, read + units));
      if (written + bytes.length > destination.length) break;
      destination.set(bytes, written);
      written += bytes.length;
      read += units;
    }
    return { read, written };
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
