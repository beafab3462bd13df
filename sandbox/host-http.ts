// The wire under the sandbox's fetch: one HTTP hop at a time over undici, its keep-alive connections pooled
// per destination origin and bounded. host-fetch.ts does node-fetch's part (redirects, default headers,
// decoding, caps) on top. Why undici rather than Node's http.request: in CPU profiles of the sandbox
// process running one fetch per event, Node's client (ClientRequest and its agent, IncomingMessage and its
// streams, a writev per request) took ~87 µs per request, undici's dispatch with the handler below and its
// socket calls ~50 µs (docs/architecture.md). What user code sees is unchanged; on the wire, only the case
// and place of the Host, Connection and Content-Length lines the client writes itself differ from Node's.

import type { LookupFunction } from 'node:net';
import zlib from 'node:zlib';
import { type Dispatcher, Pool } from 'undici';
import { BOUNDS } from './bounds.js';

/** A response's head as node-fetch 2 (through Node's http) has it. */
export interface HopHead {
  status: number;
  statusText: string;
  /** Names lower-cased, repeated values as Node's IncomingMessage keeps them (see nodeHeaders). */
  headers: Record<string, string | string[]>;
}

/** Where a body's chunks go: each chunk, then its end or an error (once). */
export interface BodySink {
  data(chunk: Buffer): void;
  end(): void;
  error(err: Error): void;
}

/** A body that can be read once: its chunks go to the sink given; `stop` ends it unread. */
export interface BodySource {
  read(sink: BodySink): void;
  stop(err: Error): void;
}

/**
 * Destination origins whose pools are kept: with BOUNDS.socketsPerHost connections each, an isolate holds
 * at most BOUNDS.socketsPerIsolate sockets however many hosts it calls (past it, the pool used least
 * recently is closed: its idle sockets go, its requests in flight finish).
 */
const POOLED_ORIGINS = Math.max(1, Math.floor(BOUNDS.socketsPerIsolate / BOUNDS.socketsPerHost));

export class HttpPools {
  /** Pools by origin, least recently used first (a Map keeps insertion order). */
  private readonly pools = new Map<string, Pool>();

  /**
   * `backstopMs`: the longest a response may keep its connection silent, head or body. host-fetch.ts times
   * each request itself (the host's limit and node-fetch's `timeout`); this bounds what it no longer
   * watches, such as the body of a redirect it is reading to its end so that the connection is reused.
   */
  constructor(
    private readonly lookup: LookupFunction,
    private readonly backstopMs: number,
  ) {}

  /** Starts one request; the hop's `head` settles when the response's head has come (or it failed). */
  hop(target: URL, method: string, headers: string[], body: Buffer | null): Hop {
    const hop = new Hop();
    try {
      this.pool(target.origin).dispatch(
        { origin: target.origin, path: `${target.pathname}${target.search}`, method, headers, body },
        hop,
      );
    } catch (err) {
      // undici refuses what it cannot send (say, a Transfer-Encoding header) before anything is sent.
      hop.onResponseError(undefined, err as Error);
    }
    return hop;
  }

  private pool(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (pool) {
      this.pools.delete(origin);
      this.pools.set(origin, pool);
      return pool;
    }
    if (this.pools.size >= POOLED_ORIGINS) {
      const [oldest, retired] = this.pools.entries().next().value as [string, Pool];
      this.pools.delete(oldest);
      void retired.close().catch(() => {});
    }
    pool = new Pool(origin, {
      connections: BOUNDS.socketsPerHost,
      keepAliveTimeout: BOUNDS.idleSocketMs,
      keepAliveMaxTimeout: BOUNDS.idleSocketMs,
      headersTimeout: this.backstopMs,
      bodyTimeout: this.backstopMs,
      connect: { lookup: this.lookup },
    });
    this.pools.set(origin, pool);
    return pool;
  }

  destroy(): void {
    for (const pool of this.pools.values()) void pool.destroy().catch(() => {});
    this.pools.clear();
  }
}

/** One request in flight, as undici's dispatch handler: its head as a promise, its body as a BodySource. */
export class Hop implements Dispatcher.DispatchHandler, BodySource {
  readonly head: Promise<HopHead>;
  private settleHead!: { resolve(h: HopHead): void; reject(err: Error): void };
  private headCame = false;
  private controller: Dispatcher.DispatchController | undefined;
  /** Set before the request started: it is aborted as soon as it does. */
  private abortedFor: Error | undefined;
  private sink: BodySink | undefined;
  /** Chunks (and the end, or an error) that came before the body was read. */
  private early: Buffer[] = [];
  private done: 'end' | Error | undefined;

  constructor() {
    this.head = new Promise((resolve, reject) => {
      this.settleHead = { resolve, reject };
    });
    this.head.catch(() => {}); // read by the caller; a failure with nobody waiting is not unhandled
  }

  /** Ends the request, wherever it is: its head rejects with `err`, or its body fails with it. */
  stop(err: Error): void {
    if (this.done !== undefined) return;
    if (this.controller) {
      this.controller.abort(err);
      return;
    }
    // Still queued in its pool (undici starts a request only when a connection takes it): it fails now,
    // and is aborted as soon as it starts.
    this.abortedFor = err;
    this.onResponseError(undefined, err);
  }

  read(sink: BodySink): void {
    this.sink = sink;
    for (const chunk of this.early) sink.data(chunk);
    this.early = [];
    if (this.done === 'end') sink.end();
    else if (this.done !== undefined) sink.error(this.done);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abortedFor) controller.abort(this.abortedFor);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return; // 1xx informational: the response proper follows
    this.headCame = true;
    this.settleHead.resolve({
      status: statusCode,
      statusText: statusMessage ?? '',
      headers: nodeHeaders(headers),
    });
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.sink) this.sink.data(chunk);
    else this.early.push(chunk);
  }

  onResponseEnd(): void {
    this.done = 'end';
    this.sink?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.done !== undefined) return;
    this.done = err;
    if (!this.headCame) this.settleHead.reject(err);
    else this.sink?.error(err);
  }
}

/** Headers of which Node's IncomingMessage keeps the first value only (its matchKnownFields). */
const FIRST_ONLY = new Set([
  'content-type',
  'content-length',
  'user-agent',
  'referer',
  'host',
  'authorization',
  'proxy-authorization',
  'if-modified-since',
  'if-unmodified-since',
  'from',
  'location',
  'max-forwards',
  'retry-after',
  'etag',
  'last-modified',
  'server',
  'age',
  'expires',
]);

/**
 * undici's parsed headers (names lower-cased, a repeated name's values as an array, in order) as Node's
 * http has them, which is what node-fetch 2 builds its Headers from: Set-Cookie values apart, the fields
 * above their first value, Cookie joined with "; ", any other repeated field joined with ", ".
 */
export function nodeHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') out[name] = value;
    else if (FIRST_ONLY.has(name)) out[name] = value[0] ?? '';
    else out[name] = value.join(name === 'cookie' ? '; ' : ', ');
  }
  return out;
}

/**
 * A body decoded as node-fetch 2 decodes it (its `compress` default), given the response's
 * Content-Encoding: gzip, deflate (with or without the zlib header: node-fetch looks at the first byte)
 * and br; any other coding, or none, as it came.
 */
export function decodedBody(
  source: BodySource,
  coding: string | string[] | undefined,
  method: string,
  status: number,
): BodySource {
  if (method === 'HEAD' || status === 204 || status === 304 || typeof coding !== 'string') return source;
  // Sync flush, as node-fetch: servers that end a gzip stream early still give what they sent.
  const sync = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  let make:
    | ((first: Buffer) => zlib.Gunzip | zlib.Inflate | zlib.InflateRaw | zlib.BrotliDecompress)
    | undefined;
  if (coding === 'gzip' || coding === 'x-gzip') make = () => zlib.createGunzip(sync);
  else if (coding === 'br') make = () => zlib.createBrotliDecompress();
  else if (coding === 'deflate' || coding === 'x-deflate')
    make = (first) => ((first[0]! & 0x0f) === 0x08 ? zlib.createInflate() : zlib.createInflateRaw());
  if (!make) return source;
  const decode = make;
  return {
    stop: (err) => source.stop(err),
    read(sink) {
      let decoder: ReturnType<typeof decode> | undefined;
      let failed = false;
      const fail = (err: Error) => {
        if (failed) return;
        failed = true;
        decoder?.destroy();
        source.stop(err);
        sink.error(err);
      };
      const start = (first: Buffer) => {
        const d = decode(first);
        d.on('data', (chunk: Buffer) => sink.data(chunk));
        d.on('end', () => sink.end());
        d.on('error', fail);
        decoder = d;
        return d;
      };
      source.read({
        data: (chunk) => {
          if (!failed) (decoder ?? start(chunk)).write(chunk);
        },
        end: () => {
          if (failed) return;
          if (decoder) decoder.end();
          else sink.end(); // an empty body decodes to nothing
        },
        error: (err) => {
          if (failed) return;
          failed = true;
          decoder?.destroy();
          sink.error(err);
        },
      });
    },
  };
}
