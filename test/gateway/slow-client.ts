// A client that sends a request over a raw socket at the pace it chooses: headers or body a few bytes
// at a time, or nothing at all. It reads whatever the gateway answers until the connection closes.

import { connect, type Socket } from 'node:net';
import { waitFor } from '../helpers/wait.js';
import { basic } from './harness.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: any;
  /** Bytes of the request the client had written when the connection closed. */
  sent: number;
  /** Bytes of the request it meant to write. */
  total: number;
}

export interface SlowRequest {
  /** Resolves when the gateway closes the connection (or the client gives up after `maxMs`). */
  response: Promise<RawResponse>;
  /** Bytes written so far. */
  sent(): number;
  /** Bytes of the body written so far. */
  bodySent(): number;
  /** The underlying socket, e.g. to end it from the test. */
  socket: Socket;
}

export interface SlowRequestOptions {
  /** Path and JSON body; the head is built from them (Content-Length, Basic auth when writeKey). */
  path?: string;
  body?: string | Buffer;
  writeKey?: string;
  headers?: Record<string, string>;
  /** Write the head a byte at a time too (default: all at once). */
  trickleHeaders?: boolean;
  /** Write nothing at all: a connection that only holds a socket. */
  silent?: boolean;
  /** Bytes per tick and the tick (ms) once trickling. */
  bytesPerTick?: number;
  intervalMs?: number;
  /** Send this many body bytes at once before trickling the rest. */
  burst?: number;
  /** Local address to connect from (127.0.0.0/8 is all loopback on Linux): a distinct client. */
  localAddress?: string;
  /** Give up waiting for the gateway after this long (then the promise rejects). */
  maxMs?: number;
}

/** Sends one request slowly to `url` (http://host:port) and collects the answer. */
export function slowRequest(url: string, options: SlowRequestOptions = {}): SlowRequest {
  const { hostname, port } = new URL(url);
  const body = Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body ?? '');
  const headers: Record<string, string> = {
    host: `${hostname}:${port}`,
    'content-type': 'application/json',
    'content-length': String(body.length),
    ...(options.writeKey !== undefined ? { authorization: basic(options.writeKey) } : {}),
    ...options.headers,
  };
  const head = Buffer.from(
    `POST ${options.path ?? '/v1/batch'} HTTP/1.1\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`,
  );
  const request = Buffer.concat([head, body]);
  const socket = connect({
    host: hostname,
    port: Number(port),
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  });
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  const write = (n: number) => {
    if (sent >= request.length || socket.destroyed || !socket.writable) return;
    const chunk = request.subarray(sent, Math.min(request.length, sent + n));
    sent += chunk.length;
    socket.write(chunk, () => {});
  };
  socket.on('connect', () => {
    if (options.silent) return;
    if (!options.trickleHeaders) write(head.length + (options.burst ?? 0));
    timer = setInterval(() => write(options.bytesPerTick ?? 1), options.intervalMs ?? 100);
  });
  // The gateway may close while we write: that is an answer, not a test failure.
  socket.on('error', () => {});
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  const response = new Promise<RawResponse>((resolve, reject) => {
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the gateway did not close the connection within ${options.maxMs ?? 30_000} ms`));
    }, options.maxMs ?? 30_000);
    socket.on('close', () => {
      clearTimeout(giveUp);
      if (timer) clearInterval(timer);
      resolve({ ...parseResponse(Buffer.concat(chunks)), sent, total: request.length });
    });
  });
  return { response, sent: () => sent, bodySent: () => Math.max(0, sent - head.length), socket };
}

/** The first HTTP response in `raw`; status 0 when the gateway closed without answering. */
export function parseResponse(raw: Buffer): Omit<RawResponse, 'sent' | 'total'> {
  const text = raw.toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: text };
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? Number.NaN);
  const rest = text.slice(end + 4);
  const bodyText = Number.isNaN(length) ? rest : rest.slice(0, length);
  let body: unknown = bodyText;
  try {
    body = JSON.parse(bodyText);
  } catch {
    // not JSON: keep the text
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body };
}

/** A /v1/batch body of `n` small track events, ids prefixed with `tag`. */
export function batchBody(n: number, tag: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    batch: Array.from({ length: n }, (_, i) => ({
      type: 'track',
      userId: 'u',
      event: 'E',
      messageId: `${tag}-${i}`,
    })),
    ...extra,
  });
}

/** The answer to a request, or undefined once `held()` says the gateway took it in and holds it. */
export async function answerOrHeld<T>(
  answer: Promise<T>,
  held: () => boolean | Promise<boolean>,
): Promise<T | undefined> {
  let value: T | undefined;
  let settled = false;
  answer.then(
    (v) => {
      value = v;
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await waitFor('an answer, or the request held', async () => settled || (await held()));
  return value;
}
