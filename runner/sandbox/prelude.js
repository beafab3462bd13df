// The in-isolate side of the sandbox: the globals user code sees and the micro-batch dispatcher.
// Evaluated inside the isolate as one function; the host's capabilities arrive as its arguments and
// stay in its closure, never on globalThis.
// Plain JavaScript on purpose: it is evaluated by V8 inside the isolate, not by Node.

// hostFetch: ivm.Reference (invocationId, request) → Promise<response | {error}>
// hostSleep: ivm.Reference (ms) → Promise<void>
// hostDeliver: ivm.Reference (callId, resultsJson): where the dispatcher sends a micro-batch's results
// hostUrl, hostCrypto: synchronous callbacks (op, ...args) → result | {error}
(function prelude(hostFetch, hostSleep, hostDeliver, hostUrl, hostCrypto, configJson) {
  // biome-ignore lint/suspicious/noRedundantUseStrict: V8 evaluates this file as a script, not a module
  'use strict';

  const config = JSON.parse(configJson);

  // Intrinsics captured before user code runs, so a function that overwrites JSON, Object or Array
  // methods cannot break the dispatcher's own bookkeeping.
  const jsonParse = JSON.parse;
  const jsonStringify = JSON.stringify;
  const dateNow = Date.now;
  const objectKeys = Object.keys;
  const objectFreeze = Object.freeze;
  const defineProperty = Object.defineProperty;
  const isArray = Array.isArray;
  const hasOwn = Object.hasOwn;
  const PromiseCtor = Promise;
  const promiseThen = Promise.prototype.then;
  const MapCtor = Map;
  const StringCtor = String;
  const NumberCtor = Number;
  const fromCharCode = String.fromCharCode;
  const Uint8ArrayCtor = Uint8Array;

  const asyncCall = { arguments: { copy: true }, result: { promise: true, copy: true } };
  const then = (promise, onFulfilled, onRejected) => promiseThen.call(promise, onFulfilled, onRejected);
  const sleep = (ms) => hostSleep.apply(undefined, [ms], asyncCall);

  // ---------------------------------------------------------------------------------------------
  // Invocation context. The invocation that is running decides where console output goes and which
  // invocation a fetch is traced under. Host I/O (fetch, timers) restores it when it resumes, so
  // concurrent invocations keep their own logs even across awaits.
  let current = 0; // 0: top-level code while loading
  const sinks = new MapCtor(); // invocation id → { lines, bytes, truncated }
  const newSink = () => ({ lines: [], bytes: 0, truncated: false });
  sinks.set(0, newSink());

  function utf8Length(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (c >= 0xd800 && c <= 0xdbff) {
        n += 4;
        i++;
      } else n += 3;
    }
    return n;
  }

  function describe(value, depth) {
    if (typeof value === 'string') return depth === 0 ? value : jsonStringify(value);
    if (value === undefined) return 'undefined';
    if (typeof value === 'function') return `[Function: ${value.name || 'anonymous'}]`;
    if (typeof value === 'symbol' || typeof value === 'bigint') return StringCtor(value);
    if (value instanceof Error) return value.stack || `${value.name}: ${value.message}`;
    if (value instanceof URL || value instanceof URLSearchParams) return `${value.constructor.name} ${value}`;
    if (value instanceof Headers) return `Headers ${jsonStringify(Object.fromEntries(value))}`;
    try {
      const json = jsonStringify(value);
      return json === undefined ? StringCtor(value) : json;
    } catch {
      return '[Circular or unserializable object]';
    }
  }

  function writeLog(level, args) {
    const sink = sinks.get(current);
    if (!sink || sink.truncated) return;
    let line = '';
    for (let i = 0; i < args.length; i++) {
      let part;
      try {
        part = describe(args[i], 0);
      } catch {
        part = '[unprintable]';
      }
      line += (i === 0 ? '' : ' ') + part;
    }
    if (level !== 'log') line = `${level}: ${line}`;
    const bytes = utf8Length(line) + 1;
    if (sink.bytes + bytes <= config.logBytes) {
      sink.lines.push(line);
      sink.bytes += bytes;
      return;
    }
    const room = config.logBytes - sink.bytes - 1; // the cut line's own newline counts too
    if (room > 0) sink.lines.push(line.slice(0, room));
    sink.lines.push(`[log truncated: output is capped at ${config.logBytes} bytes per invocation]`);
    sink.truncated = true;
  }

  const console = objectFreeze({
    log: (...a) => writeLog('log', a),
    info: (...a) => writeLog('info', a),
    debug: (...a) => writeLog('debug', a),
    warn: (...a) => writeLog('warn', a),
    error: (...a) => writeLog('error', a),
    trace: (...a) => writeLog('trace', a),
  });

  // ---------------------------------------------------------------------------------------------
  // Segment's error classes: thrown by user code, mapped to outcomes by the host's outcome table.
  class EventNotSupported extends Error {
    constructor(message) {
      super(message);
      this.name = 'EventNotSupported';
    }
  }
  class InvalidEventPayload extends Error {
    constructor(message) {
      super(message);
      this.name = 'InvalidEventPayload';
    }
  }
  class ValidationError extends Error {
    constructor(message) {
      super(message);
      this.name = 'ValidationError';
    }
  }
  class RetryError extends Error {
    constructor(message) {
      super(message);
      this.name = 'RetryError';
    }
  }
  const errorClasses = [
    ['EventNotSupported', EventNotSupported],
    ['InvalidEventPayload', InvalidEventPayload],
    ['ValidationError', ValidationError],
    ['RetryError', RetryError],
  ];

  // ---------------------------------------------------------------------------------------------
  // Bytes and text: TextEncoder/TextDecoder (UTF-8), Buffer (utf8, base64, base64url, hex, latin1), btoa/atob.
  function utf8Encode(str) {
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

  function utf8Decode(bytes) {
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

  function base64Encode(bytes, url) {
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
  function base64Decode(str) {
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

  function latin1Encode(str) {
    const out = new Uint8ArrayCtor(str.length);
    for (let i = 0; i < str.length; i++) out[i] = str.charCodeAt(i) & 0xff;
    return out;
  }

  function latin1Decode(bytes) {
    let out = '';
    for (let i = 0; i < bytes.length; i += 8192) out += fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    return out;
  }

  function normalizeEncoding(encoding) {
    const e = StringCtor(encoding ?? 'utf8').toLowerCase();
    if (e === 'utf8' || e === 'utf-8') return 'utf8';
    if (e === 'base64' || e === 'base64url' || e === 'hex') return e;
    if (e === 'latin1' || e === 'binary' || e === 'ascii') return 'latin1';
    throw new TypeError(`Unknown encoding: ${encoding}`);
  }

  function encodeString(str, encoding) {
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

  function decodeBytes(bytes, encoding) {
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

  class Buffer extends Uint8Array {
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

  class TextEncoder {
    get encoding() {
      return 'utf-8';
    }
    encode(input = '') {
      return utf8Encode(StringCtor(input));
    }
  }

  class TextDecoder {
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

  function btoa(data) {
    const s = StringCtor(data);
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 255)
        throw new Error('btoa: the string contains characters outside of the Latin1 range');
    }
    return base64Encode(latin1Encode(s), false);
  }

  function atob(data) {
    const s = StringCtor(data).replace(/[\t\n\f\r ]/g, '');
    if (/[^A-Za-z0-9+/=]/.test(s) || s.length % 4 === 1)
      throw new Error('atob: the string is not correctly encoded');
    return latin1Decode(base64Decode(s));
  }

  // ---------------------------------------------------------------------------------------------
  // URL and URLSearchParams. URL parsing is delegated to the host's WHATWG parser (exact semantics);
  // URLSearchParams is the application/x-www-form-urlencoded algorithm.
  function hostResult(value) {
    if (value && typeof value === 'object' && typeof value.error === 'string')
      throw new TypeError(value.error);
    return value;
  }

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

  class URLSearchParams {
    #pairs = [];
    constructor(init) {
      if (init === undefined || init === null) return;
      if (init instanceof URLSearchParams) this.#pairs = init.#pairs.map((p) => [p[0], p[1]]);
      else if (typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const p = Array.from(pair);
          if (p.length !== 2)
            throw new TypeError('URLSearchParams: each pair must have exactly two elements');
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

  class URL {
    #parts;
    #params;
    constructor(url, base) {
      this.#parts = hostResult(
        hostUrl('parse', StringCtor(url), base === undefined ? undefined : StringCtor(base)),
      );
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
      this.#parts = hostResult(hostUrl('set', this.#parts.href, part, StringCtor(value)));
      if (this.#params && part !== 'hash') URLSearchParams._reparse(this.#params, this.#parts.search);
    }
    get href() {
      return this.#parts.href;
    }
    set href(v) {
      this.#parts = hostResult(hostUrl('parse', StringCtor(v)));
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

  // ---------------------------------------------------------------------------------------------
  // fetch with node-fetch semantics. The request is performed by the host, which enforces the egress
  // policy, timeouts and size caps, and traces it under the invocation that made it.
  function normalizeHeaderName(name) {
    const n = StringCtor(name);
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(n))
      throw new TypeError(`Header name must be a valid HTTP token ["${n}"]`);
    return n.toLowerCase();
  }

  class Headers {
    #map = new MapCtor(); // lower-case name → values
    constructor(init) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        for (const [k, v] of init.#map) this.#map.set(k, v.slice());
      } else if (typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const p = Array.from(pair);
          if (p.length !== 2) throw new TypeError('Each header pair must be an iterable [name, value] tuple');
          this.append(p[0], p[1]);
        }
      } else if (typeof init === 'object') {
        for (const key of objectKeys(init)) {
          const value = init[key];
          if (isArray(value)) for (const v of value) this.append(key, v);
          else this.append(key, value);
        }
      } else throw new TypeError('Headers: expected an object, an array of pairs or a Headers instance');
    }
    append(name, value) {
      const n = normalizeHeaderName(name);
      const list = this.#map.get(n);
      if (list) list.push(StringCtor(value).trim());
      else this.#map.set(n, [StringCtor(value).trim()]);
    }
    set(name, value) {
      this.#map.set(normalizeHeaderName(name), [StringCtor(value).trim()]);
    }
    get(name) {
      const list = this.#map.get(normalizeHeaderName(name));
      return list ? list.join(', ') : null;
    }
    has(name) {
      return this.#map.has(normalizeHeaderName(name));
    }
    delete(name) {
      this.#map.delete(normalizeHeaderName(name));
    }
    forEach(fn, thisArg) {
      for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
    }
    *entries() {
      for (const k of [...this.#map.keys()].sort()) yield [k, this.#map.get(k).join(', ')];
    }
    *keys() {
      for (const [k] of this.entries()) yield k;
    }
    *values() {
      for (const [, v] of this.entries()) yield v;
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    /** node-fetch extension: every value of every header. */
    raw() {
      const out = {};
      for (const [k, v] of this.#map) out[k] = v.slice();
      return out;
    }
    get [Symbol.toStringTag]() {
      return 'Headers';
    }
  }

  function bodyBytes(body, headers) {
    if (body === undefined || body === null) return null;
    if (typeof body === 'string') {
      if (!headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
      return body;
    }
    if (body instanceof URLSearchParams) {
      if (!headers.has('content-type'))
        headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
      return body.toString();
    }
    if (body instanceof ArrayBuffer) return new Uint8ArrayCtor(body.slice(0));
    if (ArrayBuffer.isView(body))
      return new Uint8ArrayCtor(body.buffer, body.byteOffset, body.byteLength).slice();
    // node-fetch coerces any other value to a string.
    const s = StringCtor(body);
    if (!headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
    return s;
  }

  class Body {
    #bytes;
    #used = false;
    constructor(bytes) {
      this.#bytes = bytes ?? new Uint8ArrayCtor(0);
    }
    get bodyUsed() {
      return this.#used;
    }
    #consume() {
      if (this.#used) return PromiseCtor.reject(new TypeError(`body used already for: ${this.url}`));
      this.#used = true;
      return PromiseCtor.resolve(this.#bytes);
    }
    async text() {
      return utf8Decode(await this.#consume());
    }
    async json() {
      const text = await this.text();
      try {
        return jsonParse(text);
      } catch (err) {
        const e = new Error(`invalid json response body at ${this.url} reason: ${err.message}`);
        e.name = 'FetchError';
        e.type = 'invalid-json';
        throw e;
      }
    }
    async arrayBuffer() {
      const b = await this.#consume();
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    }
    async buffer() {
      return Buffer.from(await this.#consume());
    }
    _bytes() {
      return this.#bytes;
    }
  }

  class Request extends Body {
    constructor(input, init = {}) {
      const from = input instanceof Request ? input : null;
      const headers = new Headers(init.headers ?? from?.headers);
      const body = init.body !== undefined ? bodyBytes(init.body, headers) : from ? from._bytes() : null;
      super(typeof body === 'string' ? utf8Encode(body) : body);
      this.url = from ? from.url : new URL(input instanceof URL ? input.href : StringCtor(input)).href;
      this.method = StringCtor(init.method ?? from?.method ?? 'GET').toUpperCase();
      this.headers = headers;
      this.redirect = init.redirect ?? from?.redirect ?? 'follow';
      this._rawBody = body;
    }
    clone() {
      return new Request(this);
    }
  }

  class Response extends Body {
    constructor(body, init = {}) {
      const headers = new Headers(init.headers);
      const raw = body === undefined || body === null ? null : bodyBytes(body, headers);
      super(typeof raw === 'string' ? utf8Encode(raw) : raw);
      this.status = init.status ?? 200;
      this.statusText = init.statusText ?? '';
      this.headers = headers;
      this.url = init.url ?? '';
      this.redirected = init.redirected ?? false;
    }
    get ok() {
      return this.status >= 200 && this.status < 300;
    }
    clone() {
      return new Response(this._bytes(), this);
    }
    static json(data, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      return new Response(jsonStringify(data), { ...init, headers });
    }
  }

  async function fetch(input, init = {}) {
    const invocation = current;
    const request = new Request(input, init ?? {});
    const body = request._rawBody;
    const response = await hostFetch.apply(
      undefined,
      [
        invocation,
        {
          url: request.url,
          method: request.method,
          headers: [...request.headers.entries()],
          body: body === null ? null : body,
          redirect: request.redirect,
        },
      ],
      asyncCall,
    );
    // Back from host I/O: whatever the user's code does next belongs to the invocation that fetched.
    current = invocation;
    if (response.error) {
      const err = new Error(response.error);
      err.name = 'FetchError';
      err.type = response.type ?? 'system';
      if (response.code) err.code = response.code;
      throw err;
    }
    return new Response(response.body, response);
  }

  // ---------------------------------------------------------------------------------------------
  // crypto: hashing, HMAC and randomness performed by the host's crypto module.
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
      hostResult(hostCrypto('check', op, this.#algorithm));
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
        hostResult(hostCrypto(this.#op, this.#algorithm, Buffer.concat(this.#chunks), this.#key)),
      );
      return encoding === undefined || encoding === 'buffer' ? out : out.toString(encoding);
    }
  }

  const crypto = objectFreeze({
    createHash: (algorithm) => new Hash('hash', algorithm, null),
    createHmac: (algorithm, key) => new Hash('hmac', algorithm, toBytes(key).slice()),
    randomBytes: (size) => {
      const n = NumberCtor(size);
      if (!Number.isInteger(n) || n < 0 || n > 65536)
        throw new RangeError('randomBytes: size must be 0..65536');
      return Buffer.from(hostResult(hostCrypto('randomBytes', n)));
    },
    randomUUID: () => hostResult(hostCrypto('randomUUID')),
    getRandomValues: (array) => {
      const bytes = hostResult(hostCrypto('randomBytes', array.byteLength));
      new Uint8ArrayCtor(array.buffer, array.byteOffset, array.byteLength).set(bytes);
      return array;
    },
  });

  // ---------------------------------------------------------------------------------------------
  // Timers, backed by host timers so they also wake an otherwise idle isolate.
  let timerSeq = 0;
  const timers = new MapCtor();

  function setTimeout(callback, ms, ...args) {
    if (typeof callback !== 'function')
      throw new TypeError('The "callback" argument must be of type function');
    const id = ++timerSeq;
    const invocation = current;
    timers.set(id, true);
    then(sleep(Math.max(0, NumberCtor(ms) || 0)), () => {
      if (!timers.delete(id)) return;
      current = invocation;
      try {
        callback(...args);
      } catch (err) {
        writeLog('error', ['Uncaught exception in setTimeout callback:', err]);
      }
    });
    return id;
  }

  function clearTimeout(id) {
    timers.delete(id);
  }

  // ---------------------------------------------------------------------------------------------
  // cache: values computed by `fn` and kept for `ttlMs`, bounded in entries and approximate bytes.
  // Concurrent loads of one key share a single call of `fn`.
  const cacheEntries = new MapCtor(); // key → { value, expires, bytes }
  const cachePending = new MapCtor();
  let cacheBytes = 0;

  function cacheSize(value) {
    try {
      return 2 * (jsonStringify(value)?.length ?? 8) + 64;
    } catch {
      return 1024;
    }
  }

  function cacheRemove(key) {
    const e = cacheEntries.get(key);
    if (!e) return false;
    cacheBytes -= e.bytes;
    cacheEntries.delete(key);
    return true;
  }

  const cache = objectFreeze({
    async load(key, ttlMs, fn) {
      const k = StringCtor(key);
      if (typeof fn !== 'function') throw new TypeError('cache.load(key, ttlMs, fn): fn must be a function');
      const hit = cacheEntries.get(k);
      if (hit && hit.expires > dateNow()) {
        cacheEntries.delete(k); // re-insert: Map order is the LRU order
        cacheEntries.set(k, hit);
        return hit.value;
      }
      if (hit) cacheRemove(k);
      const invocation = current;
      const pending = cachePending.get(k);
      if (pending) {
        // Several invocations may wait for one load. Each resumes in a task of its own, so that the
        // invocation context restored for it is still in place when its code continues.
        const resume = async () => {
          await sleep(0);
          current = invocation;
        };
        return then(
          pending,
          async (value) => {
            await resume();
            return value;
          },
          async (err) => {
            await resume();
            throw err;
          },
        );
      }
      const loading = (async () => {
        try {
          const value = await fn();
          const bytes = cacheSize(value);
          if (bytes <= config.cacheBytes) {
            cacheRemove(k);
            while (cacheEntries.size >= config.cacheEntries || cacheBytes + bytes > config.cacheBytes) {
              cacheRemove(cacheEntries.keys().next().value);
            }
            cacheEntries.set(k, { value, expires: dateNow() + Math.max(0, NumberCtor(ttlMs) || 0), bytes });
            cacheBytes += bytes;
          }
          return value;
        } finally {
          cachePending.delete(k);
          current = invocation;
        }
      })();
      cachePending.set(k, loading);
      return loading;
    },
    delete(key) {
      return cacheRemove(StringCtor(key));
    },
  });

  // ---------------------------------------------------------------------------------------------
  // Globals of user code: exactly these, and V8's own built-ins.
  const globals = {
    console,
    fetch,
    Headers,
    Request,
    Response,
    URL,
    URLSearchParams,
    Buffer,
    TextEncoder,
    TextDecoder,
    btoa,
    atob,
    crypto,
    cache,
    setTimeout,
    clearTimeout,
    _: globalThis._,
    EventNotSupported,
    InvalidEventPayload,
    ValidationError,
    RetryError,
  };
  for (const name of objectKeys(globals)) {
    defineProperty(globalThis, name, {
      value: globals[name],
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The dispatcher: one call from the host carries a micro-batch of events; each event's handler runs
  // concurrently and the call returns one result per event, plus each invocation's console output.
  let handlers = {};
  // Which handler each event type goes to: api/events.ts's table, handed over by the host.
  const HANDLER_FOR_TYPE = config.handlerForType;

  function errorMessage(err) {
    try {
      if (err instanceof Error) return StringCtor(err.message || err.name);
      return StringCtor(err);
    } catch {
      return 'an unprintable value was thrown';
    }
  }

  function classify(err) {
    for (const [name, cls] of errorClasses) {
      if (err instanceof cls) return { ok: false, errorClass: name, message: errorMessage(err) };
    }
    return { ok: false, errorClass: 'Error', message: errorMessage(err) };
  }

  function runSingle(event) {
    const type = event && typeof event === 'object' ? event.type : undefined;
    const handlerName =
      typeof type === 'string' && hasOwn(HANDLER_FOR_TYPE, type) ? HANDLER_FOR_TYPE[type] : undefined;
    if (!handlerName) throw new InvalidEventPayload(`unknown event type ${jsonStringify(type)}`);
    const handler = handlers[handlerName];
    if (!handler)
      throw new EventNotSupported(`${type} is not supported: the function defines no ${handlerName}`);
    return handler(event, jsonParse(config.settings));
  }

  function batchResult(returned, count) {
    if (!isArray(returned)) return { ok: true };
    const statuses = [];
    for (let i = 0; i < returned.length; i++) {
      let status = 0;
      let message = '';
      try {
        const entry = returned[i];
        status = NumberCtor(entry?.status) || 0;
        message = entry?.errormessage === undefined ? '' : StringCtor(entry.errormessage);
      } catch (err) {
        message = errorMessage(err);
      }
      statuses.push([status, message]);
    }
    if (statuses.length !== count) {
      return {
        ok: false,
        errorClass: 'Error',
        message: `onBatch returned ${statuses.length} results for ${count} events: return one {status, errormessage} per event, in order`,
      };
    }
    return { ok: true, statuses };
  }

  function dispatch(requestJson) {
    const request = jsonParse(requestJson);
    const ids = request.ids;
    const results = new Array(ids.length);
    for (const id of ids) sinks.set(id, newSink());
    const started = dateNow();
    const runs = [];
    const track = (i, start, promise) =>
      then(
        promise,
        (value) => {
          results[i] = request.batch ? batchResult(value, request.events.length) : { ok: true };
          results[i].durationMs = dateNow() - start;
        },
        (err) => {
          results[i] = classify(err);
          results[i].durationMs = dateNow() - start;
        },
      );
    if (request.batch) {
      current = ids[0];
      const handler = handlers.onBatch;
      let p;
      try {
        if (!handler) throw new EventNotSupported('the function defines no onBatch');
        p = PromiseCtor.resolve(handler(request.events, jsonParse(config.settings)));
      } catch (err) {
        p = PromiseCtor.reject(err);
      }
      runs.push(track(0, started, p));
    } else {
      for (let i = 0; i < ids.length; i++) {
        current = ids[i];
        const start = dateNow();
        let p;
        try {
          p = PromiseCtor.resolve(runSingle(request.events[i]));
        } catch (err) {
          p = PromiseCtor.reject(err);
        }
        runs.push(track(i, start, p));
      }
    }
    // One deadline for the whole micro-batch: invocations still pending when it passes time out here.
    // (A CPU loop never lets this fire; the host's wall-clock backstop disposes the isolate then.)
    const deadline = sleep(Math.max(0, request.deadlineMs - (dateNow() - started)));
    // Results go back through hostDeliver rather than as this call's result: isolated-vm fails a call
    // when user code leaves a promise rejection unhandled, and that must not fail the whole micro-batch.
    then(PromiseCtor.race([PromiseCtor.all(runs), deadline]), () => {
      const logs = [];
      for (let i = 0; i < ids.length; i++) {
        if (results[i] === undefined) {
          results[i] = {
            ok: false,
            errorClass: 'Timeout',
            message: `the invocation did not finish within ${request.deadlineMs} ms`,
            durationMs: dateNow() - started,
          };
        }
        logs.push(sinks.get(ids[i]).lines);
        sinks.delete(ids[i]);
      }
      hostDeliver.applyIgnored(undefined, [request.callId, jsonStringify({ results, logs })], {
        arguments: { copy: true },
      });
    });
  }

  function setHandlers(table) {
    handlers = {};
    for (const name of objectKeys(table)) if (typeof table[name] === 'function') handlers[name] = table[name];
    return objectKeys(handlers);
  }

  function takeLoadLogs() {
    const lines = sinks.get(0).lines;
    sinks.set(0, newSink());
    return jsonStringify(lines);
  }

  return { dispatch, setHandlers, takeLoadLogs };
});
