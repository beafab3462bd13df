// fetch with node-fetch semantics, and its Request and Response. The request is performed by the host
// (host-fetch.ts, host-io.ts), which enforces the egress policy, timeouts and size caps, and traces it
// under the invocation that made it. Requests wait here before crossing when too many (or too many bytes)
// are already crossing, so what a function sends is bounded before it reaches the host.

import { BodyStream } from './body-stream.js';
import { nodeBuffer } from './buffer.js';
import { binaryToText, latin1Encode, utf8Decode, utf8Encode } from './bytes.js';
import { Headers, wireHeaders } from './headers.js';
import { copyArguments, host } from './host.js';
import {
  append,
  byteLengthOf,
  defineProperty,
  ErrorCtor,
  hasOwn,
  jsonParse,
  jsonStringify,
  MapCtor,
  mapClear,
  mapDelete,
  mapGet,
  mapSet,
  mapSize,
  NumberCtor,
  named,
  objectCreate,
  PromiseCtor,
  regexpTest,
  rejected,
  resolved,
  StringCtor,
  Uint8ArrayCtor,
  whenSettled,
} from './intrinsics.js';
import { running, setCurrent } from './invocation.js';
import { URL, URLSearchParams } from './url.js';

function fetchError(message, type, code) {
  const err = new ErrorCtor(message);
  err.name = 'FetchError';
  err.type = type;
  if (code) err.code = code;
  if (code && type === 'system') err.errno = code; // as node-fetch 2's FetchError of a system error
  return err;
}

// Admission: requests crossing to the host at once, and their body bytes (config.bounds).
let crossing = 0;
let crossingBytes = 0;
let waiting = []; // FIFO of { invocation, size, wake }
let waitingHead = 0;
// Invocations with requests still waiting, and those of them that ended: their waiting requests are
// dropped as the queue reaches them (never run), so an invocation's end costs nothing per waiting request.
const waitingCount = objectCreate(null);
const endedWhileWaiting = objectCreate(null);

const fits = (size) => {
  const { fetchesInFlightPerIsolate, fetchRequestBytesInFlight } = host.config.bounds;
  return crossing < fetchesInFlightPerIsolate && crossingBytes + size <= fetchRequestBytesInFlight;
};

/** Takes a waiting request off the queue's head; whether it may still run. */
function shift() {
  const next = waiting[waitingHead];
  waiting[waitingHead++] = undefined;
  const id = next.invocation;
  if (--waitingCount[id] === 0) delete waitingCount[id];
  const ended = endedWhileWaiting[id] === true;
  if (ended && waitingCount[id] === undefined) delete endedWhileWaiting[id];
  if (waitingHead === waiting.length) {
    waiting = [];
    waitingHead = 0;
  }
  return ended ? undefined : next;
}

/** Drops the requests of ended invocations at the queue's head. */
function dropEnded() {
  while (waitingHead < waiting.length && endedWhileWaiting[waiting[waitingHead].invocation] === true) shift();
}

function admit(invocation, size) {
  dropEnded();
  if (waitingHead === waiting.length && fits(size)) {
    crossing++;
    crossingBytes += size;
    return undefined;
  }
  waitingCount[invocation] = (waitingCount[invocation] ?? 0) + 1;
  return new PromiseCtor((wake) => append(waiting, { __proto__: null, invocation, size, wake }));
}

function leave(size) {
  crossing--;
  crossingBytes -= size;
  for (dropEnded(); waitingHead < waiting.length && fits(waiting[waitingHead].size); dropEnded()) {
    const next = shift();
    crossing++;
    crossingBytes += next.size;
    next.wake();
  }
}

/** Invocations that ended: their requests still waiting to cross are dropped (they never run). */
export function fetchesEnded(ids) {
  for (let i = 0; i < ids.length; i++)
    if (waitingCount[ids[i]] !== undefined) endedWhileWaiting[ids[i]] = true;
}

// Crossings: every request made in one microtask turn goes to the host in one call (with the large bodies
// taken since the last one), and the host answers in batches (settleFetches), so a micro-batch of
// handlers that each fetch costs two crossings, not one async call each.
let outbox = []; // [requestId, invocation, wire]
let taken = []; // seqs of large response bodies now in the isolate
let outboxQueued = false;
let nextRequestId = 0;
const answers = new MapCtor(); // requestId → resolve

function flushOutbox() {
  outboxQueued = false;
  const requests = outbox;
  const received = taken;
  outbox = [];
  taken = [];
  host.fetch.applyIgnored(undefined, [requests, received], copyArguments);
}

function queueFlush() {
  if (outboxQueued) return;
  outboxQueued = true;
  whenSettled(resolved(undefined), flushOutbox);
}

function cross(invocation, wire) {
  const id = ++nextRequestId;
  return new PromiseCtor((resolve) => {
    mapSet(answers, id, resolve);
    append(outbox, [id, invocation, wire]);
    queueFlush();
  });
}

/**
 * The host's answers, a JSON text of [requestId, response] each (host-io.ts's encodeAnswers), with large
 * bodies apart in `bodies`: their fetches resume in this one task. JSON.parse defines properties, so no
 * setter user code put on Object.prototype sees an answer.
 */
export function settleFetches(json, bodies) {
  const results = jsonParse(json);
  for (let i = 0; i < results.length; i++) {
    const answer = results[i];
    const resolve = mapGet(answers, answer[0]);
    if (resolve === undefined) continue;
    mapDelete(answers, answer[0]);
    const response = answer[1];
    if (hasOwn(response, 'bodyAt')) response.body = bodies[response.bodyAt];
    resolve(response);
  }
}

function requestSize(url, method, headers, body) {
  const b = host.config.bounds;
  if (method.length > b.fetchMethodChars)
    return `a request method can be at most ${b.fetchMethodChars} characters`;
  if (url.length > b.fetchUrlChars) return `a request URL can be at most ${b.fetchUrlChars} characters`;
  if (headers.length > b.fetchHeaderCount) return `a request can have at most ${b.fetchHeaderCount} headers`;
  let chars = 0;
  for (let i = 0; i < headers.length; i++) chars += headers[i][0].length + headers[i][1].length;
  if (chars > b.fetchHeaderChars) return `request headers can be at most ${b.fetchHeaderChars} characters`;
  const size = body === null ? 0 : typeof body === 'string' ? body.length : byteLengthOf(body);
  if (size > b.fetchRequestBodyBytes) return `a request body can be at most ${b.fetchRequestBodyBytes} bytes`;
  return size;
}

function bodyBytes(body, headers) {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') {
    if (!headers.has('content-type')) headers.append('Content-Type', 'text/plain;charset=UTF-8');
    return body;
  }
  if (body instanceof URLSearchParams) {
    if (!headers.has('content-type'))
      headers.append('Content-Type', 'application/x-www-form-urlencoded;charset=UTF-8');
    return body.toString();
  }
  if (body instanceof ArrayBuffer) return new Uint8ArrayCtor(body.slice(0));
  if (ArrayBuffer.isView(body))
    return new Uint8ArrayCtor(body.buffer, body.byteOffset, body.byteLength).slice();
  // node-fetch coerces any other value to a string.
  const s = StringCtor(body);
  if (!headers.has('content-type')) headers.append('Content-Type', 'text/plain;charset=UTF-8');
  return s;
}

/** Gives a body the bytes of a response from the host, held as a latin1 string until they are read. */
let adoptBinary;

/**
 * A body is held as it came: bytes, the host's latin1 string of a response, or the text it was made from
 * (a request's JSON, say). Text becomes UTF-8 bytes only when bytes are asked for: most requests and
 * responses are only ever sent, or read as text.
 */
class Body {
  #bytes;
  #binary;
  #text;
  #used = false;
  #stream; // undefined until `body` is read; null for a Request or Response made without a body
  #error; // why reading the body fails: it did not come within the request's `timeout`
  static {
    adoptBinary = (body, binary, error) => {
      body.#bytes = undefined;
      body.#binary = binary;
      body.#error = error;
      body.#stream = undefined; // made when read: most functions never look at res.body
    };
  }
  constructor(bytes, text) {
    if (text !== undefined) this.#text = text;
    else this.#bytes = bytes ?? new Uint8ArrayCtor(0);
    if (text === undefined && (bytes === undefined || bytes === null)) this.#stream = null;
  }
  get bodyUsed() {
    return this.#used;
  }
  /** node-fetch 2's Readable, as a stream of the body's bytes (body-stream.js); null when made without one. */
  get body() {
    if (this.#stream === undefined) this.#stream = new BodyStream(() => this.#take());
    return this.#stream;
  }
  /** Marks the body read; throws when it was already, or when it never came within the `timeout`. */
  #claim() {
    if (this.#used) throw new TypeError(`body used already for: ${this.url}`);
    this.#used = true;
    if (this.#error !== undefined) throw fetchError(this.#error.message, this.#error.type);
  }
  #consume() {
    try {
      this.#claim();
    } catch (err) {
      return rejected(err);
    }
    return resolved(undefined);
  }
  /** The bytes, for the body's stream: reading it is reading the body. */
  #take() {
    this.#claim();
    return this._bytes();
  }
  async text() {
    await this.#consume();
    if (this.#text !== undefined) return this.#text;
    return this.#binary !== undefined ? binaryToText(this.#binary) : utf8Decode(this.#bytes);
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
    await this.#consume();
    const b = this._bytes();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  }
  async buffer() {
    await this.#consume();
    return nodeBuffer().from(this._bytes());
  }
  /** The bytes, made here from the host's string: when the isolate has no room, a RangeError user code can catch. */
  _bytes() {
    if (this.#bytes === undefined) {
      this.#bytes = this.#text !== undefined ? utf8Encode(this.#text) : latin1Encode(this.#binary);
      this.#binary = undefined;
      this.#text = undefined;
    }
    return this.#bytes;
  }
}

// The href of URLs fetched lately: a function fetches the same few URLs again and again, and each parse
// is a call to the host's parser. Bounded; a parse is pure, so a cached answer is the same answer.
const hrefs = new MapCtor();
const HREFS_KEPT = 256;

/** node-fetch 2 parses what has a scheme as a WHATWG URL, and refuses anything else as relative. */
const HAS_SCHEME = /^[a-zA-Z][a-zA-Z\d+\-.]*:/;

function normalizedUrl(input) {
  const known = mapGet(hrefs, input);
  if (known !== undefined) return known;
  if (!regexpTest(HAS_SCHEME, input)) throw new TypeError('Only absolute URLs are supported');
  const href = new URL(input).href;
  if (input.length <= 2048) {
    if (mapSize(hrefs) >= HREFS_KEPT) mapClear(hrefs);
    mapSet(hrefs, input, href);
  }
  return href;
}

export class Request extends Body {
  constructor(input, init = {}) {
    const from = input instanceof Request ? input : null;
    const headers = new Headers(init.headers ?? from?.headers);
    const body = init.body !== undefined ? bodyBytes(init.body, headers) : from ? from._bytes() : null;
    if (typeof body === 'string') super(undefined, body);
    else super(body);
    this.url = from ? from.url : normalizedUrl(input instanceof URL ? input.href : StringCtor(input));
    this.method = StringCtor(init.method ?? from?.method ?? 'GET').toUpperCase();
    this.headers = headers;
    this.redirect = init.redirect ?? from?.redirect ?? 'follow';
    // node-fetch 2's extension: ms until the response's head has come (and again for its body); 0 is none.
    // Own properties only, and defined: a `timeout` getter user code put on Object.prototype (a name
    // isolated-vm's options share) neither sets it nor is called by setting it.
    const timeout = (hasOwn(init, 'timeout') && init.timeout) || from?.timeout || 0;
    defineProperty(this, 'timeout', {
      __proto__: null,
      value: timeout,
      writable: true,
      enumerable: true,
      configurable: true,
    });
    this._rawBody = body;
  }
  clone() {
    return new Request(this);
  }
  get [Symbol.toStringTag]() {
    return 'Request';
  }
}

export class Response extends Body {
  constructor(body, init = {}) {
    const headers = new Headers(init.headers);
    const raw = body === undefined || body === null ? null : bodyBytes(body, headers);
    if (typeof raw === 'string') super(undefined, raw);
    else super(raw);
    this.status = init.status ?? 200;
    this.statusText = init.statusText ?? '';
    this.headers = headers;
    this.url = init.url ?? '';
    this.redirected = init.redirected ?? false;
  }
  get ok() {
    return this.status >= 200 && this.status < 300;
  }
  get [Symbol.toStringTag]() {
    return 'Response';
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

const HTTP_SCHEME = /^https?:/;

export async function fetch(input, init = {}) {
  const invocation = running(fetch);
  const request = new Request(input, init ?? {});
  // node-fetch 2's own check (the host refuses other schemes too, redirects included).
  if (!regexpTest(HTTP_SCHEME, request.url)) throw new TypeError('Only HTTP(S) protocols are supported');
  const body = request._rawBody;
  const headers = wireHeaders(request.headers);
  const size = requestSize(request.url, request.method, headers, body);
  if (typeof size === 'string') throw fetchError(size, 'max-size');
  const wait = admit(invocation, size);
  if (wait !== undefined) {
    await wait;
    setCurrent(invocation);
  }
  let response;
  try {
    response = await cross(invocation, {
      url: request.url,
      method: request.method,
      headers,
      body,
      redirect: request.redirect,
      timeout: requestTimeout(request.timeout),
    });
  } finally {
    leave(size);
  }
  // Back from host I/O: whatever the user's code does next belongs to the invocation that fetched.
  setCurrent(invocation);
  if (response.error) throw fetchError(response.error, response.type ?? 'system', response.code);
  // A large body stays counted on the host until we have it: say so now that it has crossed.
  if (response.seq !== undefined) {
    append(taken, response.seq);
    queueFlush();
  }
  const res = new Response(null, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
    url: response.url,
    redirected: response.redirected,
  });
  adoptBinary(res, response.body, response.bodyError);
  return res;
}

/**
 * node-fetch 2 arms `setTimeout(…, timeout)` when the value is truthy, so NaN and 0 are none and anything
 * under 1 ms is 1 ms. Past Node's timer range (~24.8 days) Node would fire at once; here the request's
 * own limits (the host's timeout and the invocation's deadline) bound it, so it is left to them (null).
 */
function requestTimeout(timeout) {
  if (!timeout) return null;
  const ms = NumberCtor(timeout);
  if (ms > TIMER_MAX_MS) return null;
  // NaN (a truthy non-number) and anything under 1 are 1 ms, as Node's setTimeout takes them.
  // biome-ignore lint/complexity/useMathMinMax: Math.max(NaN, 1) is NaN, and Math is user code's to replace
  return ms >= 1 ? ms : 1;
}
const TIMER_MAX_MS = 2 ** 31 - 1;

named(Request, 'Request');
named(Response, 'Response');
