// The host half of the sandbox's fetch: performs a function's HTTP request with node-fetch under the
// egress policy, a per-request timeout, a response size cap and the isolate's budget of response bytes in
// flight. Never rejects: failures are values. Keep-alive sockets are pooled per destination host, bounded.

import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import fetch, { type RequestInit } from 'node-fetch';
import { BOUNDS } from './bounds.js';
import { checkAddress, EgressRefused, guardedLookup } from './egress.js';

export interface FetchRequestWire {
  url: string;
  method: string;
  headers: [string, string][];
  body: string | Uint8Array | null;
  redirect: 'follow' | 'manual' | 'error' | string;
  /** Responses (by seq) whose bodies the isolate has taken; alone, without url, an acknowledgement only. */
  received?: number[];
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
  /** Aborted when the invocation that made the request ends. */
  signal: AbortSignal;
  budget: ResponseBudget;
}

const MAX_REDIRECTS = 20;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

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
      timeout: BOUNDS.idleSocketMs,
      scheduling: 'lifo' as const,
    };
    this.httpAgent = new http.Agent(pool);
    this.httpsAgent = new https.Agent(pool);
  }

  async fetch(request: FetchRequestWire, context: FetchContext): Promise<FetchResultWire> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.timeoutMs);
    const ended = () => controller.abort();
    context.signal.addEventListener('abort', ended, { once: true });
    try {
      if (context.signal.aborted) controller.abort();
      return await this.follow(request, controller.signal, context.budget);
    } catch (err) {
      if (context.signal.aborted) {
        return {
          error: `request to ${request.url} was aborted: its invocation ended`,
          type: 'system',
          code: 'ABORTED',
        };
      }
      if (controller.signal.aborted) {
        return {
          error: `request to ${request.url} timed out after ${this.options.timeoutMs} ms`,
          type: 'request-timeout',
        };
      }
      return describeFailure(request.url, err);
    } finally {
      clearTimeout(timer);
      context.signal.removeEventListener('abort', ended);
    }
  }

  private async follow(
    request: FetchRequestWire,
    signal: AbortSignal,
    budget: ResponseBudget,
  ): Promise<FetchResultWire> {
    let url = request.url;
    let method = request.method;
    let body = request.body;
    const headers = new Map(request.headers.map(([k, v]) => [k.toLowerCase(), v]));
    for (let hop = 0; ; hop++) {
      const target = new URL(url);
      if (target.protocol !== 'http:' && target.protocol !== 'https:') {
        throw new EgressRefused(`only http: and https: URLs can be fetched, not ${target.protocol}`);
      }
      const literal = target.hostname.replace(/^\[|\]$/g, '');
      if (isIP(literal)) checkAddress(literal, this.options.allowPrivateNetwork);
      const init: RequestInit = {
        method,
        headers: [...headers],
        body: body === null ? undefined : typeof body === 'string' ? body : Buffer.from(body),
        redirect: 'manual',
        signal,
        agent: target.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
      };
      const res = await fetch(url, init);
      const stream = res.body as unknown as Readable | null;
      if (REDIRECT_STATUSES.has(res.status) && res.headers.has('location') && request.redirect !== 'manual') {
        stream?.resume();
        if (request.redirect === 'error') {
          return {
            error: `uri requested responds with a redirect, redirect mode is set to error: ${url}`,
            type: 'no-redirect',
          };
        }
        if (hop >= MAX_REDIRECTS) return { error: `maximum redirect reached at: ${url}`, type: 'max-size' };
        const next = new URL(res.headers.get('location')!, url);
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
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
      const tooLarge = (): FetchResultWire => ({
        error: `response body from ${url} exceeds the limit of ${this.options.maxResponseBytes} bytes`,
        type: 'max-size',
      });
      const overBudget = (): FetchResultWire => ({
        error: `response body from ${url} does not fit: the function's responses in flight are capped at ${BOUNDS.fetchResponseBytesInFlight} bytes`,
        type: 'max-size',
      });
      const declared = Number(res.headers.get('content-length'));
      if (Number.isFinite(declared) && declared > this.options.maxResponseBytes) {
        stream?.destroy();
        return tooLarge();
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of stream ?? []) {
          const n = (chunk as Buffer).length;
          const refused =
            size + n > this.options.maxResponseBytes ? tooLarge : budget.reserve(n) ? undefined : overBudget;
          if (refused) {
            stream?.destroy();
            budget.release(size);
            return refused();
          }
          size += n;
          chunks.push(chunk as Buffer);
        }
      } catch (err) {
        budget.release(size);
        throw err;
      }
      // The reserved bytes stay with the returned body: the caller releases them.
      const binary = Buffer.concat(chunks).toString('latin1');
      return {
        status: res.status,
        statusText: res.statusText,
        url,
        redirected: hop > 0,
        headers: [...res.headers.entries()],
        body: binary,
      };
    }
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
