// The host half of the sandbox's fetch: performs a function's HTTP request (over host-http.ts) under the
// egress policy, a per-request timeout, a response size cap and the isolate's budget of response bytes in
// flight, doing on the wire what node-fetch does (its default headers, decompression, redirects hop by
// hop). Never rejects: failures are values. Keep-alive sockets are pooled per destination host, bounded.

import { isIP, type LookupFunction } from 'node:net';
import { BOUNDS } from './bounds.js';
import { checkAddress, EgressRefused, guardedLookup } from './egress.js';
import { type BodySink, type BodySource, decodedBody, type HopHead, HttpPools } from './host-http.js';

export interface FetchRequestWire {
  url: string;
  method: string;
  headers: [string, string][];
  body: string | Uint8Array | null;
  redirect: 'follow' | 'manual' | 'error' | string;
  /** node-fetch 2's `timeout` option in ms (null: none), for the response's head and again for its body. */
  timeout?: number | null;
}

export type FetchResultWire =
  | {
      error?: undefined;
      status: number;
      statusText: string;
      url: string;
      redirected: boolean;
      headers: [string, string][];
      /**
       * The body's bytes as a latin1 string (one character per byte). A string, not a Uint8Array: copying
       * an ArrayBuffer into an isolate whose ArrayBuffer budget is spent aborts the process in
       * isolated-vm's transfer code, while the isolate turns a string into bytes itself, where running out
       * is a RangeError user code can catch. A fresh string is also never a view of Node's Buffer pool.
       */
      body: string;
      /** Set when the body stays counted against the isolate's budget until the isolate acknowledges it. */
      seq?: number;
      /** The body did not come within the `timeout` option: reading it rejects with this (node-fetch 2). */
      bodyError?: { message: string; type: 'body-timeout' };
    }
  | {
      error: string;
      type:
        | 'refused'
        | 'request-timeout'
        | 'max-size'
        | 'max-redirect'
        | 'invalid-redirect'
        | 'system'
        | 'no-redirect';
      code?: string;
    };

export interface HostFetchOptions {
  allowPrivateNetwork: boolean;
  timeoutMs: number;
  maxResponseBytes: number;
}

/** Response bytes one isolate may have the host hold at once. A successful fetch returns with its body still reserved. */
export interface ResponseBudget {
  reserve(bytes: number): boolean;
  release(bytes: number): void;
}

export interface FetchContext {
  /** Cancelled (`ended`) when the invocation that made the request ends. */
  handle: RequestHandle;
  budget: ResponseBudget;
}

const MAX_REDIRECTS = 20;
/** node-fetch 2's default request headers (with the case it sends them in), where the caller set none. */
const USER_AGENT = 'node-fetch/1.0 (+https://github.com/bitinn/node-fetch)';
const ACCEPT_ENCODING = 'gzip,deflate';
/** Names no request is sent with to another host after a redirect (node-fetch 2's list). */
const CREDENTIALS = ['authorization', 'www-authenticate', 'cookie', 'cookie2'];
/** What Node's (and so node-fetch's) header value check refuses. */
const INVALID_HEADER_VALUE = /[^\t\u0020-\u007E\u0080-\u00FF]/;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * One request in flight: why it was cut short, once it was, and what to stop to cut it (the hop on the
 * wire now, or the body being read). A plain object rather than an AbortSignal: one per request, on the
 * hot path.
 */
export class RequestHandle {
  reason: 'ended' | 'timeout' | undefined;
  current: BodySource | undefined;

  cancel(reason: 'ended' | 'timeout'): void {
    this.reason ??= reason;
    this.current?.stop(new Error(`request ${reason}`));
  }
}

/**
 * A request's headers as node-fetch 2 puts them on the wire: each name in the case it was first given,
 * its values in order (one header line each); names are matched case-insensitively.
 */
class RequestHeaders {
  private readonly byName = new Map<string, { name: string; values: string[] }>();

  constructor(pairs: readonly [string, string][]) {
    for (const [name, value] of pairs) {
      const h = this.byName.get(name.toLowerCase());
      if (h) h.values.push(value);
      else this.byName.set(name.toLowerCase(), { name, values: [value] });
    }
  }
  has(name: string): boolean {
    return this.byName.has(name.toLowerCase());
  }
  /** Replaces the values, keeping the name's case if it is there already (node-fetch 2's `set`). */
  set(name: string, value: string): void {
    const h = this.byName.get(name.toLowerCase());
    if (h) h.values = [value];
    else this.byName.set(name.toLowerCase(), { name, values: [value] });
  }
  delete(name: string): void {
    this.byName.delete(name.toLowerCase());
  }
  /** As undici takes them, `[name, value, ...]`: a line per value, one Host only (as node-fetch 2 sends it). */
  toWire(): string[] {
    const out: string[] = [];
    for (const [key, h] of this.byName) {
      if (key === 'host') out.push(h.name, h.values[0]!);
      else for (const value of h.values) out.push(h.name, value);
    }
    return out;
  }
}

/** The `timeout` option ran out before a response's head came. */
class NetworkTimeout extends Error {}

/** Where a redirect's body goes: read to its end, so the connection can carry the next hop. */
const DISCARD: BodySink = { data() {}, end() {}, error() {} };

export class HostFetcher {
  /** Idle sockets stay pooled per host (a fetch per event at network speed needs them), bounded. */
  private readonly pools: HttpPools;

  constructor(private readonly options: HostFetchOptions) {
    this.pools = new HttpPools(
      guardedLookup(options.allowPrivateNetwork) as unknown as LookupFunction,
      options.timeoutMs,
    );
  }

  async fetch(request: FetchRequestWire, context: FetchContext): Promise<FetchResultWire> {
    const attempt = context.handle;
    const timer = setTimeout(() => attempt.cancel('timeout'), this.options.timeoutMs);
    try {
      return await this.follow(request, attempt, context.budget);
    } catch (err) {
      if (attempt.reason === 'ended') {
        return {
          error: `request to ${request.url} was aborted: its invocation ended`,
          type: 'system',
          code: 'ABORTED',
        };
      }
      if (attempt.reason === 'timeout') {
        return {
          error: `request to ${request.url} timed out after ${this.options.timeoutMs} ms`,
          type: 'request-timeout',
        };
      }
      if (err instanceof NetworkTimeout) return { error: err.message, type: 'request-timeout' };
      return describeFailure(request.url, err);
    } finally {
      clearTimeout(timer);
    }
  }

  private async follow(
    request: FetchRequestWire,
    attempt: RequestHandle,
    budget: ResponseBudget,
  ): Promise<FetchResultWire> {
    let url = request.url;
    let method = request.method;
    let body = request.body;
    const headers = new RequestHeaders(request.headers);
    const timeout = userTimeout(request.timeout);
    for (let hops = 0; ; hops++) {
      const target = new URL(url);
      if (target.protocol !== 'http:' && target.protocol !== 'https:') {
        throw new EgressRefused(`only http: and https: URLs can be fetched, not ${target.protocol}`);
      }
      const literal = target.hostname.replace(/^\[|\]$/g, '');
      if (isIP(literal)) checkAddress(literal, this.options.allowPrivateNetwork);
      const payload = body === null ? null : typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
      // node-fetch 2's defaults and order: the caller's headers, then these where the caller set none.
      if (!headers.has('accept')) headers.set('Accept', '*/*');
      if (payload) headers.set('Content-Length', String(payload.length));
      else if (method === 'POST' || method === 'PUT') headers.set('Content-Length', '0');
      else headers.delete('content-length');
      if (!headers.has('user-agent')) headers.set('User-Agent', USER_AGENT);
      if (!headers.has('accept-encoding')) headers.set('Accept-Encoding', ACCEPT_ENCODING);
      const hop = await this.send(target, method, headers, payload, attempt, timeout);
      const res = hop.head;
      const location = res.headers.location as string | undefined;
      const redirect = REDIRECT_STATUSES.has(res.status) && location !== undefined;
      // node-fetch 2's own step for 'manual': Location resolved against the request's URL.
      let resolvedLocation: string | undefined;
      if (redirect) {
        try {
          resolvedLocation = new URL(location, url).href;
        } catch {
          // an invalid Location: refused when following, left as it came with 'manual'
        }
      }
      if (redirect && request.redirect !== 'manual') {
        hop.body.read(DISCARD);
        if (request.redirect === 'error') {
          return {
            error: `uri requested responds with a redirect, redirect mode is set to error: ${url}`,
            type: 'no-redirect',
          };
        }
        if (resolvedLocation === undefined) {
          return {
            error: `uri requested responds with an invalid redirect URL: ${location}`,
            type: 'invalid-redirect',
          };
        }
        if (hops >= MAX_REDIRECTS)
          return { error: `maximum redirect reached at: ${url}`, type: 'max-redirect' };
        const next = new URL(resolvedLocation);
        const status = res.status;
        if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
          method = method === 'HEAD' ? 'HEAD' : 'GET';
          body = null;
          headers.delete('content-type');
          headers.delete('content-length');
        }
        // Credentials are not forwarded to another origin (node-fetch 2 forwards them to another port of
        // the same host; this is stricter).
        if (next.origin !== target.origin) for (const name of CREDENTIALS) headers.delete(name);
        url = next.href;
        continue;
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > this.options.maxResponseBytes) {
        hop.body.stop(new Error('response too large'));
        return this.tooLarge(url);
      }
      const decoded = decodedBody(hop.body, res.headers['content-encoding'], method, res.status);
      attempt.current = decoded;
      const read = await this.read(decoded, budget, timeout);
      if (read === 'too-large') return this.tooLarge(url);
      if (read === 'over-budget') {
        return {
          error: `response body from ${url} does not fit: the function's responses in flight are capped at ${BOUNDS.fetchResponseBytesInFlight} bytes`,
          type: 'max-size',
        };
      }
      // The headers as node-fetch 2 has them: Node's res.headers (names lower-cased, Set-Cookie values
      // apart, other repeated ones joined or, for the likes of Content-Type, the first kept), less the
      // values its Headers would refuse; a manual redirect's Location resolved.
      const pairs: [string, string][] = [];
      for (const [name, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        if (name === 'location' && resolvedLocation !== undefined) pairs.push([name, resolvedLocation]);
        else if (typeof value === 'string') {
          if (!INVALID_HEADER_VALUE.test(value)) pairs.push([name, value]);
        } else for (const v of value) if (!INVALID_HEADER_VALUE.test(v)) pairs.push([name, v]);
      }
      const head = { status: res.status, statusText: res.statusText, url, redirected: hops > 0 };
      if (read === 'body-timeout') {
        const message = `Response timeout while trying to fetch ${url} (over ${timeout}ms)`;
        return { ...head, headers: pairs, body: '', bodyError: { message, type: 'body-timeout' } };
      }
      // The reserved bytes stay with the returned body: the caller releases them.
      return { ...head, headers: pairs, body: read };
    }
  }

  /** One hop: resolves with the response's head once it has arrived, and its body still to be read. */
  private async send(
    target: URL,
    method: string,
    headers: RequestHeaders,
    payload: Buffer | null,
    attempt: RequestHandle,
    timeout: number | undefined,
  ): Promise<{ head: HopHead; body: BodySource }> {
    if (attempt.reason) throw new Error(`request ${attempt.reason}`);
    const hop = this.pools.hop(target, method, headers.toWire(), payload);
    attempt.current = hop;
    let timer: NodeJS.Timeout | undefined;
    if (timeout !== undefined) {
      timer = setTimeout(() => hop.stop(new NetworkTimeout(`network timeout at: ${target.href}`)), timeout);
    }
    try {
      return { head: await hop.head, body: hop };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The body's bytes as a latin1 string, each chunk counted against the size cap and reserved in the
   * isolate's budget as it arrives (released again when refused).
   */
  private read(
    body: BodySource,
    budget: ResponseBudget,
    timeout: number | undefined,
  ): Promise<string | 'too-large' | 'over-budget' | 'body-timeout'> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const refuse = (why: 'too-large' | 'over-budget' | 'body-timeout') => {
        clearTimeout(timer);
        done = true;
        budget.release(size);
        body.stop(new Error(`response body refused (${why})`));
        resolve(why);
      };
      const timer = timeout === undefined ? undefined : setTimeout(() => refuse('body-timeout'), timeout);
      body.read({
        data: (chunk) => {
          if (done) return;
          const n = chunk.length;
          if (size + n > this.options.maxResponseBytes) return refuse('too-large');
          if (!budget.reserve(n)) return refuse('over-budget');
          size += n;
          chunks.push(chunk);
        },
        end: () => {
          if (done) return;
          clearTimeout(timer);
          done = true;
          resolve(
            chunks.length === 1 ? chunks[0]!.toString('latin1') : Buffer.concat(chunks).toString('latin1'),
          );
        },
        error: (err) => {
          if (done) return;
          clearTimeout(timer);
          done = true;
          budget.release(size);
          reject(err);
        },
      });
    });
  }

  private tooLarge(url: string): FetchResultWire {
    return {
      error: `response body from ${url} exceeds the limit of ${this.options.maxResponseBytes} bytes`,
      type: 'max-size',
    };
  }

  destroy(): void {
    this.pools.destroy();
  }
}

function describeFailure(url: string, err: unknown): FetchResultWire {
  const e = err as { message?: string; code?: string; cause?: { code?: string } };
  const refused = err instanceof EgressRefused || e.code === 'EGRESS_REFUSED';
  if (refused) {
    const reason = (e.message ?? '').replace(/^request to .* failed, reason: /, '');
    return { error: `fetch to ${url} refused: ${reason}`, type: 'refused', code: 'EGRESS_REFUSED' };
  }
  // node-fetch 2's message for a failed request (its FetchError also has the code as `errno`).
  const result: FetchResultWire = {
    error: `request to ${url} failed, reason: ${e.message ?? String(err)}`,
    type: 'system',
  };
  if (e.code) result.code = e.code;
  return result;
}

/**
 * The `timeout` option as the isolate sent it (untrusted): a number of ms at least 1 and within Node's
 * timer range, or none. Longer than the host's own timeout it changes nothing: that one ends it first.
 */
function userTimeout(value: unknown): number | undefined {
  if (typeof value !== 'number' || !(value >= 1) || value > 2 ** 31 - 1) return undefined;
  return value;
}
