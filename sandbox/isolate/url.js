// URL and URLSearchParams. URL parsing is delegated to the host's WHATWG parser (exact semantics);
// URLSearchParams is the application/x-www-form-urlencoded algorithm, on USVStrings as in Node.

import { host, hostResult } from './host.js';
import { defineProperty, objectKeys, StringCtor, stringToWellFormed, Uint8ArrayCtor } from './intrinsics.js';
import { invalidUrl } from './node-errors.js';
import { utf8Decode } from './text-decoder.js';

function invalidTuple() {
  const err = new TypeError('Each query pair must be an iterable [name, value] tuple');
  err.code = 'ERR_INVALID_TUPLE';
  return err;
}

function formEncode(s) {
  return encodeURIComponent(s)
    .replace(/%20/g, '+')
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A string as a USVString (lone surrogates become U+FFFD), as Node converts every name and value. */
function usv(value) {
  return stringToWellFormed(StringCtor(value));
}

const HEX_PAIR = /%[0-9a-fA-F]{2}/;
const hexValue = (c) => {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
};

/**
 * Node's querystring.unescapeBuffer: %XX is a byte, a '%' without two hex digits stays, and every other
 * character is its UTF-16 code unit cut to a byte (so 'é' next to a bad escape is 0xE9, not C3 A9).
 */
function unescapeBytes(s) {
  const out = new Uint8ArrayCtor(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const high = c === 0x25 && i < s.length - 2 ? hexValue(s.charCodeAt(i + 1)) : -1;
    const low = high >= 0 ? hexValue(s.charCodeAt(i + 2)) : -1;
    if (low >= 0) {
      out[n++] = high * 16 + low;
      i += 2;
    } else out[n++] = c & 0xff;
  }
  return out.subarray(0, n);
}

/**
 * A name or value of a query, decoded as Node does (lib/internal/url.js parseParams, querystring.unescape)
 * rather than as WHATWG says: they differ when raw non-ASCII text meets an escape that is not UTF-8, and
 * functions are compared with Node. '+' is a space; with a valid %XX the text is decoded by
 * decodeURIComponent, or, when that throws, byte by byte (unescapeBytes) and then as UTF-8 with U+FFFD.
 */
function formDecode(s) {
  const spaced = s.replace(/\+/g, ' ');
  if (!HEX_PAIR.test(spaced)) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    return utf8Decode(unescapeBytes(spaced));
  }
}

/** URL's access to its URLSearchParams' query (set by the class; a static would be visible to user code). */
let reparse;

const urlOwner = Symbol('url');

export class URLSearchParams {
  #pairs = [];
  constructor(init) {
    if (init === undefined || init === null) return;
    // A brand check, not `instanceof URLSearchParams`: a class that names itself is bundled as
    // `class _URLSearchParams`, and that is the name user code would see.
    if (typeof init === 'object' && #pairs in init) this.#pairs = init.#pairs.map((p) => [p[0], p[1]]);
    else if (
      (typeof init === 'object' || typeof init === 'function') &&
      typeof init[Symbol.iterator] === 'function'
    ) {
      for (const pair of init) {
        if (
          (typeof pair !== 'object' && typeof pair !== 'function') ||
          pair === null ||
          typeof pair[Symbol.iterator] !== 'function'
        )
          throw invalidTuple();
        const p = Array.from(pair);
        if (p.length !== 2) throw invalidTuple();
        this.#pairs.push([usv(p[0]), usv(p[1])]);
      }
    } else if (typeof init === 'object' || typeof init === 'function') {
      for (const key of objectKeys(init)) this.#pairs.push([usv(key), usv(init[key])]);
    } else this.#parse(usv(init));
  }
  static {
    reparse = (params, query) => params.#parse(query);
  }
  #parse(query) {
    this.#pairs = [];
    for (const part of (query[0] === '?' ? query.slice(1) : query).split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      this.#pairs.push(
        eq < 0 ? [formDecode(part), ''] : [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))],
      );
    }
  }
  #changed() {
    const url = this[urlOwner];
    if (url) url.search = this.toString();
  }
  get size() {
    return this.#pairs.length;
  }
  append(name, value) {
    this.#pairs.push([usv(name), usv(value)]);
    this.#changed();
  }
  delete(name, value) {
    const n = usv(name);
    const v = value === undefined ? undefined : usv(value);
    this.#pairs = this.#pairs.filter((p) => !(p[0] === n && (v === undefined || p[1] === v)));
    this.#changed();
  }
  get(name) {
    const n = usv(name);
    const p = this.#pairs.find((q) => q[0] === n);
    return p ? p[1] : null;
  }
  getAll(name) {
    const n = usv(name);
    return this.#pairs.filter((p) => p[0] === n).map((p) => p[1]);
  }
  has(name, value) {
    const n = usv(name);
    const v = value === undefined ? undefined : usv(value);
    return this.#pairs.some((p) => p[0] === n && (v === undefined || p[1] === v));
  }
  set(name, value) {
    const n = usv(name);
    const v = usv(value);
    const i = this.#pairs.findIndex((p) => p[0] === n);
    if (i < 0) this.#pairs.push([n, v]);
    else {
      this.#pairs[i][1] = v;
      this.#pairs = this.#pairs.filter((p, j) => j <= i || p[0] !== n);
    }
    this.#changed();
  }
  sort() {
    this.#pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.#changed();
  }
  forEach(fn, thisArg) {
    for (const [k, v] of this.#pairs) fn.call(thisArg, v, k, this);
  }
  *entries() {
    for (const p of this.#pairs) yield [p[0], p[1]];
  }
  *keys() {
    for (const p of this.#pairs) yield p[0];
  }
  *values() {
    for (const p of this.#pairs) yield p[1];
  }
  [Symbol.iterator]() {
    return this.entries();
  }
  toString() {
    return this.#pairs.map((p) => `${formEncode(p[0])}=${formEncode(p[1])}`).join('&');
  }
}

/** The host's URL parser, given only strings it is willing to parse (config.bounds.urlChars). */
function parseUrl(op, a, b, c) {
  const max = host.config.bounds.urlChars;
  if (a.length > max || (b !== undefined && b.length > max) || (c !== undefined && c.length > max))
    throw new TypeError(`Invalid URL: longer than ${max} characters`);
  return hostResult(host.url(op, a, b, c));
}

export class URL {
  #parts;
  #params;
  constructor(url, base) {
    this.#parts = parseUrl('parse', StringCtor(url), base === undefined ? undefined : StringCtor(base));
  }
  static canParse(url, base) {
    try {
      // Not `new URL(…)`: a class that names itself is bundled as `class _URL` (see URLSearchParams).
      parseUrl('parse', StringCtor(url), base === undefined ? undefined : StringCtor(base));
      return true;
    } catch {
      return false;
    }
  }
  #set(part, value) {
    this.#parts = parseUrl('set', this.#parts.href, part, StringCtor(value));
    if (this.#params && part !== 'hash') reparse(this.#params, this.#parts.search);
  }
  get href() {
    return this.#parts.href;
  }
  set href(v) {
    const input = StringCtor(v);
    try {
      this.#parts = parseUrl('parse', input);
    } catch (err) {
      if (err.code === 'ERR_INVALID_URL') throw invalidUrl(input);
      throw err;
    }
    if (this.#params) reparse(this.#params, this.#parts.search);
  }
  get origin() {
    return this.#parts.origin;
  }
  get protocol() {
    return this.#parts.protocol;
  }
  set protocol(v) {
    this.#set('protocol', v);
  }
  get username() {
    return this.#parts.username;
  }
  set username(v) {
    this.#set('username', v);
  }
  get password() {
    return this.#parts.password;
  }
  set password(v) {
    this.#set('password', v);
  }
  get host() {
    return this.#parts.host;
  }
  set host(v) {
    this.#set('host', v);
  }
  get hostname() {
    return this.#parts.hostname;
  }
  set hostname(v) {
    this.#set('hostname', v);
  }
  get port() {
    return this.#parts.port;
  }
  set port(v) {
    this.#set('port', v);
  }
  get pathname() {
    return this.#parts.pathname;
  }
  set pathname(v) {
    this.#set('pathname', v);
  }
  get search() {
    return this.#parts.search;
  }
  set search(v) {
    this.#set('search', v);
  }
  get hash() {
    return this.#parts.hash;
  }
  set hash(v) {
    this.#set('hash', v);
  }
  get searchParams() {
    if (!this.#params) {
      this.#params = new URLSearchParams(this.#parts.search);
      defineProperty(this.#params, urlOwner, { value: this });
    }
    return this.#params;
  }
  toString() {
    return this.#parts.href;
  }
  toJSON() {
    return this.#parts.href;
  }
}

// As Node's: Object.prototype.toString says what they are.
for (const [Class, tag] of [
  [URLSearchParams, 'URLSearchParams'],
  [URL, 'URL'],
])
  defineProperty(Class.prototype, Symbol.toStringTag, { value: tag, configurable: true });
