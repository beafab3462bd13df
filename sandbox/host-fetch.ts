// The host half of the sandbox's fetch: performs a function's HTTP request with Node's http client under
// the egress policy, a per-request timeout, a response size cap and the isolate's budget of response bytes
// in flight, doing on the wire what node-fetch does (its default headers, decompression, redirects hop by
// hop). Never rejects: failures are values. Keep-alive sockets are pooled per destination host, bounded.

import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { BOUNDS } from './bounds.js';
import { checkAddress, EgressRefused, guardedLookup } from './egress.js';

export interface FetchRequestWire {
  url: string;
  method: string;
  headers: [string, string][];
  body: string | Uint8Array | null;
  redirect: 'follow' | 'manual' | 'error' | string;
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
    }
  | {
      error: string;
      type: 'refused' | 'request-timeout' | 'max-size' | 'system' | 'no-redirect';
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
/** What Node's (and so node-fetch's) header value check refuses. */
const INVALID_HEADER_VALUE = /[^\t\u0020-\u007E\u0080-\u00FF]/;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * One request in flight: why it was cut short, once it was, and what to destroy to cut it. (A plain
 * object rather than an AbortSignal: one per request, on the hot path.)
 */
export class RequestHandle {
  reason: 'ended' | 'timeout' | undefined;
  request: http.ClientRequest | undefined;
  body: Readable | undefined;

  cancel(reason: 'ended' | 'timeout'): void {
    this.reason ??= reason;
    const error = new Error(`request ${reason}`);
    this.body?.destroy(error);
    this.request?.destroy(error);
  }
}

/** A response's decompressed body stream, as node-fetch decodes it (its `compress` default). */
function decoded(res: http.IncomingMessage, method: string): Readable {
  const codings = res.headers['content-encoding'];
  if (method === 'HEAD' || codings === undefined || res.statusCode === 204 || res.statusCode === 304)
    return res;
  // Sync flush, as node-fetch: servers that end a gzip stream early still give what they sent.
  const options = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  let decoder: zlib.Gunzip | zlib.Inflate | zlib.InflateRaw | zlib.BrotliDecompress | undefined;
  if (codings === 'gzip' || codings === 'x-gzip') decoder = zlib.createGunzip(options);
  else if (codings === 'br') decoder = zlib.createBrotliDecompress();
  else if (codings === 'deflate' || codings === 'x-deflate') {
    // Some servers send raw deflate without the zlib header: node-fetch looks at the first byte.
    const out = new PassThrough();
    let started = false;
    res.once('data', (first: Buffer) => {
      started = true;
      const d = (first[0]! & 0x0f) === 0x08 ? zlib.createInflate() : zlib.createInflateRaw();
      d.on('error', (err) => out.destroy(err));
      d.pipe(out);
      d.write(first);
      res.pipe(d);
    });
    res.on('error', (err) => out.destroy(err));
    res.once('end', () => {
      if (!started) out.end();
    });
    return out;
  }
  if (!decoder) return res;
  res.on('error', (err) => decoder.destroy(err));
  return res.pipe(decoder);
}

export class HostFetcher {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(private readonly options: HostFetchOptions) {
    const lookup = guardedLookup(options.allowPrivateNetwork) as unknown as http.AgentOptions['lookup'];
    // Idle sockets stay pooled per host (a fetch per event at network speed needs them), a bounded few,
    // each closed after idling a while; `timeout` is also the idle limit of a pooled socket.
    const pool = {
      keepAlive: true,
      lookup,
      maxSockets: BOUNDS.socketsPerHost,
      maxFreeSockets: BOUNDS.idleSocketsPerHost,
      maxTotalSockets: BOUNDS.socketsPerIsolate,
      timeout: BOUNDS.idleSocketMs,
      scheduling: 'lifo' as const,
    };
    this.httpAgent = new http.Agent(pool);
    this.httpsAgent = new https.Agent(pool);
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
    const headers = new Map(request.headers.map(([k, v]) => [k.toLowerCase(), v]));
    // node-fetch's defaults, where the caller set none.
    if (!headers.has('accept')) headers.set('accept', '*/*');
    if (!headers.has('user-agent')) headers.set('user-agent', 'node-fetch');
    if (!headers.has('accept-encoding')) headers.set('accept-encoding', 'gzip, deflate, br');
    for (let hop = 0; ; hop++) {
      const target = new URL(url);
      if (target.protocol !== 'http:' && target.protocol !== 'https:') {
        throw new EgressRefused(`only http: and https: URLs can be fetched, not ${target.protocol}`);
      }
      const literal = target.hostname.replace(/^\[|\]$/g, '');
      if (isIP(literal)) checkAddress(literal, this.options.allowPrivateNetwork);
      const payload = body === null ? null : typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
      if (payload) headers.set('content-length', String(payload.length));
      else if (method === 'POST' || method === 'PUT') headers.set('content-length', '0');
      else headers.delete('content-length');
      const res = await this.send(target, method, headers, payload, attempt);
      const location = res.headers.location;
      if (REDIRECT_STATUSES.has(res.statusCode!) && location !== undefined && request.redirect !== 'manual') {
        res.resume();
        if (request.redirect === 'error') {
          return {
            error: `uri requested responds with a redirect, redirect mode is set to error: ${url}`,
            type: 'no-redirect',
          };
        }
        if (hop >= MAX_REDIRECTS) return { error: `maximum redirect reached at: ${url}`, type: 'max-size' };
        const next = new URL(location, url);
        const status = res.statusCode!;
        if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
          method = method === 'HEAD' ? 'HEAD' : 'GET';
          body = null;
          headers.delete('content-type');
          headers.delete('content-length');
        }
        // Credentials are not forwarded to another origin (node-fetch does the same).
        if (next.origin !== target.origin) {
          headers.delete('authorization');
          headers.delete('cookie');
        }
        url = next.href;
        continue;
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > this.options.maxResponseBytes) {
        res.destroy();
        return this.tooLarge(url);
      }
      const stream = decoded(res, method);
      attempt.body = stream;
      const read = await this.read(stream, budget);
      if (read === 'too-large') return this.tooLarge(url);
      if (read === 'over-budget') {
        return {
          error: `response body from ${url} does not fit: the function's responses in flight are capped at ${BOUNDS.fetchResponseBytesInFlight} bytes`,
          type: 'max-size',
        };
      }
      // Every header as it came (repeated ones apart, as node-fetch's raw() has them), names lower-cased;
      // like node-fetch, those whose value its Headers would refuse are left out.
      const raw = res.rawHeaders;
      const pairs: [string, string][] = [];
      for (let i = 0; i + 1 < raw.length; i += 2) {
        if (!INVALID_HEADER_VALUE.test(raw[i + 1]!)) pairs.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
      }
      // The reserved bytes stay with the returned body: the caller releases them.
      return {
        status: res.statusCode!,
        statusText: res.statusMessage ?? '',
        url,
        redirected: hop > 0,
        headers: pairs,
        body: read,
      };
    }
  }

  /** One hop: resolves with the response once its head has arrived. */
  private send(
    target: URL,
    method: string,
    headers: Map<string, string>,
    payload: Buffer | null,
    attempt: RequestHandle,
  ): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      if (attempt.reason) return reject(new Error(`request ${attempt.reason}`));
      const https_ = target.protocol === 'https:';
      const req = (https_ ? https : http).request(
        target,
        { method, headers: Object.fromEntries(headers), agent: https_ ? this.httpsAgent : this.httpAgent },
        resolve,
      );
      attempt.request = req;
      req.on('error', reject);
      req.end(payload ?? undefined);
    });
  }

  /**
   * The body's bytes as a latin1 string, each chunk counted against the size cap and reserved in the
   * isolate's budget as it arrives (released again when refused).
   */
  private read(stream: Readable, budget: ResponseBudget): Promise<string | 'too-large' | 'over-budget'> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const refuse = (why: 'too-large' | 'over-budget') => {
        done = true;
        budget.release(size);
        stream.destroy();
        resolve(why);
      };
      stream.on('data', (chunk: Buffer) => {
        if (done) return;
        const n = chunk.length;
        if (size + n > this.options.maxResponseBytes) return refuse('too-large');
        if (!budget.reserve(n)) return refuse('over-budget');
        size += n;
        chunks.push(chunk);
      });
      stream.on('end', () => {
        if (done) return;
        done = true;
        resolve(
          chunks.length === 1 ? chunks[0]!.toString('latin1') : Buffer.concat(chunks).toString('latin1'),
        );
      });
      const failed = (err: Error) => {
        if (done) return;
        done = true;
        budget.release(size);
        reject(err);
      };
      stream.on('error', failed);
      stream.on('close', () => failed(new Error('the response ended before its body did')));
    });
  }

  private tooLarge(url: string): FetchResultWire {
    return {
      error: `response body from ${url} exceeds the limit of ${this.options.maxResponseBytes} bytes`,
      type: 'max-size',
    };
  }

  destroy(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

function describeFailure(url: string, err: unknown): FetchResultWire {
  const e = err as { message?: string; code?: string; cause?: { code?: string } };
  const refused = err instanceof EgressRefused || e.code === 'EGRESS_REFUSED';
  if (refused) {
    const reason = (e.message ?? '').replace(/^request to .* failed, reason: /, '');
    return { error: `fetch to ${url} refused: ${reason}`, type: 'refused', code: 'EGRESS_REFUSED' };
  }
  const result: FetchResultWire = { error: e.message ?? String(err), type: 'system' };
  if (e.code) result.code = e.code;
  return result;
}
