// URL and URLSearchParams. URL parsing is delegated to the host's WHATWG parser (exact semantics);
// URLSearchParams is the application/x-www-form-urlencoded algorithm.

import { host, hostResult } from './host.js';
import { defineProperty, fromCharCode, objectKeys, StringCtor } from './intrinsics.js';

function formEncode(s) {
  return encodeURIComponent(s)
    .replace(/%20/g, '+')
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function formDecode(s) {
  const plus = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus.replace(/%([0-9a-fA-F]{2})/g, (_m, h) => fromCharCode(Number.parseInt(h, 16)));
  }
}

const urlOwner = Symbol('url');

export class URLSearchParams {
  #pairs = [];
  constructor(init) {
    if (init === undefined || init === null) return;
    if (init instanceof URLSearchParams) this.#pairs = init.#pairs.map((p) => [p[0], p[1]]);
    else if (typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
      for (const pair of init) {
        const p = Array.from(pair);
        if (p.length !== 2) throw new TypeError('URLSearchParams: each pair must have exactly two elements');
        this.#pairs.push([StringCtor(p[0]), StringCtor(p[1])]);
      }
    } else if (typeof init === 'object') {
      for (const key of objectKeys(init)) this.#pairs.push([key, StringCtor(init[key])]);
    } else this.#parse(StringCtor(init));
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
    this.#pairs.push([StringCtor(name), StringCtor(value)]);
    this.#changed();
  }
  delete(name, value) {
    const n = StringCtor(name);
    this.#pairs = this.#pairs.filter(
      (p) => !(p[0] === n && (value === undefined || p[1] === StringCtor(value))),
    );
    this.#changed();
  }
  get(name) {
    const p = this.#pairs.find((q) => q[0] === StringCtor(name));
    return p ? p[1] : null;
  }
  getAll(name) {
    return this.#pairs.filter((p) => p[0] === StringCtor(name)).map((p) => p[1]);
  }
  has(name, value) {
    return this.#pairs.some(
      (p) => p[0] === StringCtor(name) && (value === undefined || p[1] === StringCtor(value)),
    );
  }
  set(name, value) {
    const n = StringCtor(name);
    const i = this.#pairs.findIndex((p) => p[0] === n);
    if (i < 0) this.#pairs.push([n, StringCtor(value)]);
    else {
      this.#pairs[i][1] = StringCtor(value);
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
  static _reparse(params, query) {
    params.#parse(query);
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
      new URL(url, base);
      return true;
    } catch {
      return false;
    }
  }
  #set(part, value) {
    this.#parts = parseUrl('set', this.#parts.href, part, StringCtor(value));
    if (this.#params && part !== 'hash') URLSearchParams._reparse(this.#params, this.#parts.search);
  }
  get href() {
    return this.#parts.href;
  }
  set href(v) {
    this.#parts = parseUrl('parse', StringCtor(v));
    if (this.#params) URLSearchParams._reparse(this.#params, this.#parts.search);
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
