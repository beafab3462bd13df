// fetch with node-fetch semantics, and its Request and Response. The request is performed by the host
// (host-fetch.ts), which enforces the egress policy, timeouts and size caps, and traces it under the
// invocation that made it.

import { Buffer } from './buffer.js';
import { utf8Decode, utf8Encode } from './bytes.js';
import { Headers } from './headers.js';
import { asyncCall, host } from './host.js';
import { jsonParse, jsonStringify, PromiseCtor, StringCtor, Uint8ArrayCtor } from './intrinsics.js';
import { current, setCurrent } from './invocation.js';
import { URL, URLSearchParams } from './url.js';

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

export class Request extends Body {
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

export class Response extends Body {
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

export async function fetch(input, init = {}) {
  const invocation = current;
  const request = new Request(input, init ?? {});
  const body = request._rawBody;
  const response = await host.fetch.apply(
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
  setCurrent(invocation);
  if (response.error) {
    const err = new Error(response.error);
    err.name = 'FetchError';
    err.type = response.type ?? 'system';
    if (response.code) err.code = response.code;
    throw err;
  }
  return new Response(response.body, response);
}
