// The requests the gateway has open, and how long each may stay so: headers within the request timeout
// (Node's own check), then the body within the same time again (ours), and a shutdown ends the rest.

import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, type GatewayErrorCode } from './errors.js';
import type { GatewayMetrics } from './metrics.js';
import { requestState } from './request-state.js';

interface Open {
  reply: FastifyReply;
  /** performance.now() after which a body still arriving is cut off. */
  deadline: number;
}

export interface OpenRequestsOptions {
  /** Time for the headers, and then again for the body (ms). */
  timeoutMs: number;
  metrics: GatewayMetrics;
  /** True once the gateway is stopping: new POSTs are refused, answers close their connection. */
  isClosing: () => boolean;
}

/**
 * Requests in arrival order, until their body has arrived. Every entry gets the same timeout, so the
 * expired ones are always at the front and one interval sweeps them (no timer per request); whether
 * the body is in is Node's `complete` flag, so no hook has to say so.
 */
export class OpenRequests {
  private readonly receiving = new Map<FastifyRequest, Open>();
  private readonly open = new Set<FastifyRequest>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly emptied: Array<() => void> = [];

  constructor(private readonly options: OpenRequestsOptions) {
    this.sweeper = setInterval(() => this.sweep(), OpenRequests.checkIntervalMs(options.timeoutMs));
    this.sweeper.unref();
  }

  /** How often deadlines are checked: a tenth of the timeout, between 10 ms and 1 s. */
  static checkIntervalMs(timeoutMs: number): number {
    return Math.max(10, Math.min(1000, Math.round(timeoutMs / 10)));
  }

  /** Number of requests not yet answered (or abandoned by their client). */
  get size(): number {
    return this.open.size;
  }

  /** Hooks that track every request from its headers to its end (register before other hooks). */
  register(app: FastifyInstance): void {
    app.addHook('onRequest', (req, reply, done) => {
      this.open.add(req);
      this.receiving.set(req, { reply, deadline: performance.now() + this.options.timeoutMs });
      // 'close' comes after the answer is sent and also when the client goes away first, which
      // onResponse does not see: whatever the request holds is released either way.
      reply.raw.once('close', () => this.ended(req));
      // A request on a keep-alive connection opened before the stop: the client resends it to another
      // replica (the answer closes the connection). Probes keep answering for Kubernetes.
      done(
        this.options.isClosing() && req.method === 'POST' ? new GatewayError('GW_SHUTTING_DOWN') : undefined,
      );
    });
    // An answer sent before the body arrived (401, 429, a timeout) closes the connection: otherwise
    // Node would go on reading, and discarding, whatever the client still trickles in. While stopping,
    // every answer does, so keep-alive sockets do not hold the stop open and clients move elsewhere.
    app.addHook('onSend', (req, reply, payload, done) => {
      if (!req.raw.complete || this.options.isClosing()) void reply.header('connection', 'close');
      done(null, payload);
    });
  }

  private ended(req: FastifyRequest): void {
    this.receiving.delete(req);
    this.open.delete(req);
    const state = requestState(req);
    state.cleanup?.();
    state.lease?.release();
    if (this.open.size === 0) for (const resolve of this.emptied.splice(0)) resolve();
  }

  private sweep(): void {
    const now = performance.now();
    for (const [req, entry] of this.receiving) {
      if (entry.deadline > now) break;
      this.cut(
        req,
        entry,
        'GW_REQUEST_TIMEOUT',
        `the body did not arrive within ${this.options.timeoutMs} ms`,
      );
    }
  }

  /**
   * Ends a request whose body is still arriving with `code`. The error is raised on the stream the
   * parser reads, so it is answered through the error handler like any other body error (fastify
   * adds Connection: close); a request with no parser listening yet loses its connection instead.
   */
  private cut(req: FastifyRequest, entry: Open, code: GatewayErrorCode, detail: string): void {
    this.receiving.delete(req);
    if (entry.reply.sent || req.raw.complete) return;
    const body = requestState(req).bodyStream;
    if (body && body.listenerCount('error') > 0) {
      body.emit('error', new GatewayError(code, detail));
    } else {
      this.options.metrics.rejects.inc({ reason: code });
      req.raw.socket?.destroy();
    }
  }

  /**
   * Shutdown's last step: requests still receiving their body are answered `GW_SHUTTING_DOWN`, and the
   * promise resolves when every open request has ended, or after `flushMs` at the latest.
   */
  async endAll(flushMs: number): Promise<void> {
    for (const [req, entry] of this.receiving) {
      this.cut(req, entry, 'GW_SHUTTING_DOWN', 'the gateway stopped before the body arrived; resend it');
    }
    if (this.open.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, flushMs);
      this.emptied.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}

/**
 * Answers what Node refuses before a request reaches fastify (headers too slow or too large, bytes
 * that are not HTTP) with a catalogue error, written straight to the socket as fastify's default does.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket, metrics: GatewayMetrics): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // A response already under way on this socket belongs to a request fastify is handling: a second
  // one written now would corrupt it. Only the connection can go.
  const busy = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
  const code: GatewayErrorCode =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? 'GW_REQUEST_TIMEOUT'
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? 'GW_HEADERS_TOO_LARGE'
        : 'GW_MALFORMED_REQUEST';
  metrics.rejects.inc({ reason: code });
  if (!busy && socket.writable) {
    const gwErr = new GatewayError(
      code,
      code === 'GW_REQUEST_TIMEOUT' ? 'the headers did not arrive in time' : undefined,
    );
    const body = JSON.stringify(gwErr.toBody());
    socket.end(
      `HTTP/1.1 ${gwErr.statusCode} ${STATUS_CODES[gwErr.statusCode]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
    return;
  }
  socket.destroy();
}
