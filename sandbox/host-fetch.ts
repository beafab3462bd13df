// The host half of the sandbox's fetch: performs a function's HTTP request with node-fetch under the
// egress policy, a per-request timeout and a response size cap. Never rejects: failures are values.

import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import fetch, { type RequestInit } from 'node-fetch';
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
      body: Uint8Array;
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

const MAX_REDIRECTS = 20;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export class HostFetcher {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(private readonly options: HostFetchOptions) {
    const lookup = guardedLookup(options.allowPrivateNetwork) as unknown as http.AgentOptions['lookup'];
    this.httpAgent = new http.Agent({ keepAlive: true, lookup });
    this.httpsAgent = new https.Agent({ keepAlive: true, lookup });
  }

  async fetch(request: FetchRequestWire): Promise<FetchResultWire> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.timeoutMs);
    try {
      return await this.follow(request, controller.signal);
    } catch (err) {
      if (controller.signal.aborted) {
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

  private async follow(request: FetchRequestWire, signal: AbortSignal): Promise<FetchResultWire> {
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
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of stream ?? []) {
        size += (chunk as Buffer).length;
        if (size > this.options.maxResponseBytes) {
          stream?.destroy();
          return {
            error: `response body from ${url} exceeds the limit of ${this.options.maxResponseBytes} bytes`,
            type: 'max-size',
          };
        }
        chunks.push(chunk as Buffer);
      }
      const joined = Buffer.concat(chunks);
      return {
        status: res.status,
        statusText: res.statusText,
        url,
        redirected: hop > 0,
        headers: [...res.headers.entries()],
        body: new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength),
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
