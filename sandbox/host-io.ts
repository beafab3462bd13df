// What the host holds on behalf of one isolate: its timers, its requests (counted, on the network a few at
// a time, aborted when their invocation ends), response bytes waiting to cross, and request traces. All of
// it ends with the invocation that started it, and all at once when the isolate is killed (close()).

import { performance } from 'node:perf_hooks';
import { BOUNDS } from './bounds.js';
import { IsolateCrypto } from './host-crypto.js';
import {
  type FetchRequestWire,
  type FetchResultWire,
  type HostFetcher,
  RequestHandle,
  type ResponseBudget,
} from './host-fetch.js';
import type { Redactor } from './redact.js';
import type { RequestTrace } from './types.js';

const MAX_TIMER_MS = 2 ** 31 - 1;
/** Response bodies at most this large are not held against the budget once handed to isolated-vm. */
const SMALL_BODY_BYTES = 64 * 1024;

interface Sleep {
  invocation: number;
  timer: NodeJS.Timeout;
  resolve: (elapsed: boolean) => void;
}

/**
 * A request as the host saw it, kept for its invocation's report: redacted and cut (RequestTrace) only when
 * a report shows it, since the runner shows none of a success's (SandboxOptions.successDetails). Its
 * strings are the request's own, within the request bounds (fetchUrlChars, fetchHeaderChars), kept whole
 * so that redaction sees every secret before anything is cut; at most tracesPerInvocation of them, within
 * the trace byte budgets (traceBytesPerInvocation, and traceBytesPerIsolate through a TraceBudget).
 */
export interface KeptRequest {
  method: string;
  url: string;
  /** At most BOUNDS.traceHeaderCount of the request's header pairs. */
  headers: [string, string][];
  status: number;
  durationMs: number;
  error?: string;
}

/**
 * Bytes of kept requests (traceBytes) of one loaded function, counted from a request's end until its
 * invocation's report takes them (or they are dropped with a killed isolate): shared by the IsolateIo of
 * each isolate the function is loaded into, and by the sandbox that holds ended invocations' traces
 * until their reports are made.
 */
export interface TraceBudget {
  bytes: number;
}

/** Made for every invocation of every micro-batch: its collections are created on first use. */
interface InvocationIo {
  fetches: number;
  requests?: Set<RequestHandle>;
  traces?: KeptRequest[];
  /** What `traces` counts against the budgets (traceBytes). */
  traceBytes: number;
  untraced: number;
  /** Set by end() and close(): a request that finishes later (aborted with it) is no longer traced. */
  ended?: boolean;
  sleeps?: Set<number>;
  /** Response bytes handed to the isolate but not yet acknowledged, by request. */
  held?: Map<number, number>;
}

/** What the host kept of one invocation's requests. */
export interface InvocationTraces {
  requests: KeptRequest[];
  /** Requests made past the trace limits (count or bytes): counted only. */
  untraced: number;
  /** What `requests` counts against the TraceBudget: whoever drops them gives it back. */
  bytes: number;
}

export class IsolateIo {
  private readonly invocations = new Map<number, InvocationIo>();
  private readonly sleeps = new Map<number, Sleep>();
  private nextInternalSleep = 0;
  /** Sleeps of setTimeouts (keys > 0) among `sleeps`. */
  private userSleeps = 0;
  private onNetwork = 0;
  private readonly waitingForNetwork: Array<() => void> = [];
  private responseBytes = 0;
  private readonly heldBy = new Map<number, number>(); // request seq → invocation
  private nextRequest = 0;
  private closed = false;
  /** crypto's host objects of this isolate (sandbox/host-crypto.ts): they end with it too. */
  readonly crypto = new IsolateCrypto();
  private settle: ((json: string, bodies: string[]) => void) | undefined;
  /** Answers waiting for the next crossings into the isolate, by invocation. */
  private answers = new Map<number, [number, FetchResultWire][]>();
  readonly budget: ResponseBudget = {
    reserve: (bytes) => {
      if (this.responseBytes + bytes > BOUNDS.fetchResponseBytesInFlight) return false;
      this.responseBytes += bytes;
      return true;
    },
    release: (bytes) => {
      this.responseBytes -= bytes;
    },
  };

  constructor(
    private readonly fetcher: HostFetcher,
    /** The function's trace budget (shared across its isolates); its own one when none is given. */
    private readonly traceBudget: TraceBudget = { bytes: 0 },
  ) {
    // Top-level code (invocation 0) may start timers and requests while the function loads, and after.
    this.invocations.set(0, newInvocation());
  }

  /** Invocations of a micro-batch about to be dispatched. */
  begin(ids: readonly number[]): void {
    for (const id of ids) this.invocations.set(id, newInvocation());
  }

  /**
   * Ends invocations: their timers are cancelled, requests aborted, held bytes released; returns the
   * traces of those that made requests, still counted against the TraceBudget until the caller drops them.
   */
  end(ids: readonly number[]): Map<number, InvocationTraces> | undefined {
    let out: Map<number, InvocationTraces> | undefined;
    this.crypto.end(ids);
    for (const id of ids) {
      const io = this.invocations.get(id);
      if (!io) continue;
      this.invocations.delete(id);
      io.ended = true;
      this.release(io);
      if (io.traces || io.untraced) {
        out ??= new Map();
        out.set(id, { requests: io.traces ?? [], untraced: io.untraced, bytes: io.traceBytes });
      }
    }
    return out;
  }

  /** The isolate was killed or disposed: nothing of it may outlive it. */
  close(): void {
    this.closed = true;
    this.crypto.close();
    this.answers = new Map();
    for (const io of this.invocations.values()) {
      io.ended = true;
      this.release(io);
      // Their traces go with them: no report will take them.
      this.traceBudget.bytes -= io.traceBytes;
      io.traceBytes = 0;
    }
    this.invocations.clear();
    for (const key of [...this.sleeps.keys()]) this.wake(key, false);
    for (const wake of this.waitingForNetwork.splice(0)) wake();
  }

  /**
   * setTimeout's host half (timerId > 0; `ms` null cancels it), and the sandbox's own sleeps (timerId 0:
   * a cache waiter's turn), bounded apart from user timers. Both end with their invocation: a sleep left
   * pending costs more (isolated-vm keeps every pending call) than the crossing that settles it early.
   */
  sleep(invocation: number, ms: number | null, timerId: number): Promise<boolean> | undefined {
    const delay = Math.min(Math.max(0, Number(ms) || 0), MAX_TIMER_MS);
    if (!(Number(timerId) > 0)) {
      if (this.closed || this.sleeps.size - this.userSleeps >= BOUNDS.internalSleepsPerIsolate) {
        return Promise.resolve(false);
      }
      const key = --this.nextInternalSleep;
      const owner = this.invocations.get(invocation);
      return new Promise((resolve) => {
        const timer = setTimeout(() => this.wake(key, true), delay);
        this.sleeps.set(key, { invocation, timer, resolve });
        if (owner) {
          owner.sleeps ??= new Set();
          owner.sleeps.add(key);
        }
      });
    }
    const key = Number(timerId);
    if (ms === null) {
      this.wake(key, false);
      return undefined;
    }
    const io = this.invocations.get(invocation);
    if (this.closed || !io || this.userSleeps >= BOUNDS.hostTimersPerIsolate || this.sleeps.has(key)) {
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake(key, true), delay);
      this.sleeps.set(key, { invocation, timer, resolve });
      this.userSleeps++;
      io.sleeps ??= new Set();
      io.sleeps.add(key);
    });
  }

  /** Where answers go into the isolate (its settleFetches, as encodeAnswers writes them), set once it is loaded. */
  answerWith(settle: (json: string, bodies: string[]) => void): void {
    this.settle = settle;
  }

  /**
   * fetch's host half, one crossing at a time: the requests the isolate made in one turn, as
   * [requestId, invocation, request], and the large bodies it has taken since the last one. Each request
   * is answered through settleFetches, together with the others that finish in the same turn of Node's
   * event loop. Untrusted: past the isolate's own bound on requests crossing at once, the rest are refused.
   */
  fetchAll(requests: unknown, received: unknown): void {
    if (Array.isArray(received)) this.received(received);
    if (!Array.isArray(requests)) return;
    for (const [index, entry] of requests.entries()) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'number') continue;
      const [id, from, req] = entry as [number, unknown, FetchRequestWire];
      const invocation = Number(from);
      if (index >= BOUNDS.fetchesInFlightPerIsolate || req === null || typeof req !== 'object') {
        this.answer(id, invocation, {
          error: 'malformed or too many requests in one crossing',
          type: 'system',
        });
        continue;
      }
      // fetch() turns every failure into a value; should anything still throw, the isolate is answered.
      void this.fetch(invocation, req).then(
        (result) => this.answer(id, invocation, result),
        (err) => this.answer(id, invocation, { error: String(err), type: 'system' }),
      );
    }
  }

  private answer(id: number, invocation: number, result: FetchResultWire): void {
    if (this.closed) return;
    let group = this.answers.get(invocation);
    if (!group) {
      group = [];
      this.answers.set(invocation, group);
    }
    group.push([id, result]);
    if (this.answers.size === 1 && group.length === 1) setImmediate(this.flushAnswers);
  }

  /**
   * Answers cross one invocation at a time: the code that resumes in one crossing then belongs to one
   * invocation, which is what attribution falls back on where the stack shows no receiver (a timer or
   * request made in a continuation). Answers for one invocation that finish together still cross together.
   */
  private readonly flushAnswers = (): void => {
    const answers = this.answers;
    this.answers = new Map();
    if (this.closed) return;
    for (const group of answers.values()) {
      const bodies: string[] = [];
      this.settle?.(encodeAnswers(group, bodies), bodies);
    }
  };

  /** One request: counted per invocation, a few on the network at a time, traced (bounded). */
  async fetch(invocation: number, req: FetchRequestWire): Promise<FetchResultWire> {
    const io = this.invocations.get(invocation);
    if (this.closed || !io) {
      return { error: 'the invocation that made this request has ended', type: 'system', code: 'ABORTED' };
    }
    const start = performance.now();
    const result = await this.perform(io, req);
    // A body that is not small stays counted until the isolate says it has it (or the invocation ends):
    // isolated-vm holds a copy until the isolate takes it, and a busy isolate takes it late.
    if (
      result.error === undefined &&
      result.body.length > SMALL_BODY_BYTES &&
      this.invocations.get(invocation) === io
    ) {
      const seq = ++this.nextRequest;
      io.held ??= new Map();
      io.held.set(seq, result.body.length);
      this.heldBy.set(seq, invocation);
      result.seq = seq;
    } else if (result.error === undefined) {
      this.budget.release(result.body.length);
    }
    // Top-level code's requests (invocation 0) have no report to take their traces: they are not kept.
    if (invocation !== 0) this.trace(io, req, result, start);
    return result;
  }

  /** The isolate took these responses' bodies. */
  private received(seqs: readonly unknown[]): void {
    for (const seq of seqs.slice(0, BOUNDS.fetchesInFlightPerIsolate)) {
      const io = this.invocations.get(this.heldBy.get(Number(seq)) ?? -1);
      if (io) this.acknowledge(io, [seq]);
    }
  }

  private acknowledge(io: InvocationIo, seqs: unknown): void {
    if (!Array.isArray(seqs) || !io.held) return;
    for (const seq of seqs.slice(0, BOUNDS.fetchesInFlightPerIsolate)) {
      const bytes = io.held.get(Number(seq));
      if (bytes === undefined) continue;
      io.held.delete(Number(seq));
      this.heldBy.delete(Number(seq));
      this.budget.release(bytes);
    }
  }

  private async perform(io: InvocationIo, req: FetchRequestWire): Promise<FetchResultWire> {
    const refusal = requestProblem(req);
    if (refusal) return { error: refusal, type: 'max-size' };
    if (++io.fetches > BOUNDS.fetchesPerInvocation) {
      return {
        error: `an invocation can make at most ${BOUNDS.fetchesPerInvocation} requests`,
        type: 'max-size',
      };
    }
    const handle = new RequestHandle();
    io.requests ??= new Set();
    const requests = io.requests;
    requests.add(handle);
    try {
      if (this.onNetwork >= BOUNDS.fetchesOnNetworkPerIsolate) {
        await new Promise<void>((wake) => this.waitingForNetwork.push(wake));
      }
      if (handle.reason || this.closed) {
        return {
          error: `request to ${req.url} was aborted: its invocation ended`,
          type: 'system',
          code: 'ABORTED',
        };
      }
      this.onNetwork++;
      try {
        return await this.fetcher.fetch(req, { handle, budget: this.budget });
      } finally {
        this.onNetwork--;
        this.waitingForNetwork.shift()?.();
      }
    } finally {
      requests.delete(handle);
    }
  }

  /**
   * Keeps the request for its invocation's report, whole (redaction comes before any cut), or only counts
   * it: past tracesPerInvocation, or when its bytes would take the invocation past
   * traceBytesPerInvocation or the function past traceBytesPerIsolate. A later, smaller request may still
   * be kept. Its bytes are a few string lengths, read here on every request: no serialization.
   */
  private trace(io: InvocationIo, req: FetchRequestWire, result: FetchResultWire, start: number): void {
    // Its traces were handed over (or dropped) when it ended: one added now would be counted by no one.
    if (io.ended) return;
    io.traces ??= [];
    const traces = io.traces;
    if (traces.length >= BOUNDS.tracesPerInvocation) {
      io.untraced++;
      return;
    }
    const method = typeof req.method === 'string' ? req.method : '';
    const url = typeof req.url === 'string' ? req.url : '';
    const headers = keptHeaders(req.headers);
    const bytes = traceBytes(method, url, headers, result.error);
    if (
      io.traceBytes + bytes > BOUNDS.traceBytesPerInvocation ||
      this.traceBudget.bytes + bytes > BOUNDS.traceBytesPerIsolate
    ) {
      io.untraced++;
      return;
    }
    io.traceBytes += bytes;
    this.traceBudget.bytes += bytes;
    traces.push({
      method,
      url,
      headers,
      status: result.error === undefined ? result.status : 0,
      durationMs: Math.round(performance.now() - start),
      ...(result.error !== undefined ? { error: result.error } : {}),
    });
  }

  private wake(key: number, elapsed: boolean): void {
    const sleep = this.sleeps.get(key);
    if (!sleep) return;
    this.sleeps.delete(key);
    clearTimeout(sleep.timer);
    if (key > 0) this.userSleeps--;
    this.invocations.get(sleep.invocation)?.sleeps?.delete(key);
    sleep.resolve(elapsed);
  }

  private release(io: InvocationIo): void {
    if (io.sleeps) for (const key of [...io.sleeps]) this.wake(key, false);
    if (io.requests) for (const handle of io.requests) handle.cancel('ended');
    if (io.held) {
      for (const [seq, bytes] of io.held) {
        this.heldBy.delete(seq);
        this.budget.release(bytes);
      }
      io.held.clear();
    }
  }
}

function newInvocation(): InvocationIo {
  return { fetches: 0, traceBytes: 0, untraced: 0 };
}

/** Fixed bytes of one kept request (its object and fields), and of each header pair it keeps. */
const TRACE_BYTES = 160;
const TRACE_HEADER_BYTES = 48;

/**
 * The header pairs a trace keeps: the first traceHeaderCount, when they are all pairs of strings (the
 * request is untrusted: a malformed one was refused, and its headers are not kept, so every kept string
 * is one traceBytes counts).
 */
function keptHeaders(headers: unknown): [string, string][] {
  if (!Array.isArray(headers)) return [];
  const kept = headers.slice(0, BOUNDS.traceHeaderCount);
  for (let i = 0; i < kept.length; i++) {
    const pair = kept[i];
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') return [];
  }
  return kept as [string, string][];
}

/**
 * What a kept request holds, counted against the trace budgets: 2 bytes per character of its strings
 * (V8 keeps a string with any character past U+00FF at two bytes each; telling which would cost a scan
 * of every character), plus its fixed parts. A few string lengths per request: no serialization.
 */
function traceBytes(
  method: string,
  url: string,
  headers: readonly [string, string][],
  error: string | undefined,
): number {
  let chars = method.length + url.length + (error?.length ?? 0);
  for (let i = 0; i < headers.length; i++) chars += headers[i]![0].length + headers[i]![1].length;
  return TRACE_BYTES + TRACE_HEADER_BYTES * headers.length + 2 * chars;
}

/** Why a request is refused before it is sent: sizes the isolate should have checked, checked again. */
function requestProblem(req: FetchRequestWire): string | undefined {
  if (typeof req.url !== 'string' || req.url.length > BOUNDS.fetchUrlChars) {
    return `a request URL can be at most ${BOUNDS.fetchUrlChars} characters`;
  }
  if (typeof req.method !== 'string' || req.method.length > BOUNDS.fetchMethodChars) {
    return `a request method can be at most ${BOUNDS.fetchMethodChars} characters`;
  }
  if (!Array.isArray(req.headers) || req.headers.length > BOUNDS.fetchHeaderCount) {
    return `a request can have at most ${BOUNDS.fetchHeaderCount} headers`;
  }
  let chars = 0;
  for (const pair of req.headers) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      return 'malformed request headers';
    }
    chars += pair[0].length + pair[1].length;
  }
  if (chars > BOUNDS.fetchHeaderChars)
    return `request headers can be at most ${BOUNDS.fetchHeaderChars} characters`;
  const body = req.body;
  const bodyBytes =
    typeof body === 'string' ? Buffer.byteLength(body) : body instanceof Uint8Array ? body.length : 0;
  if (bodyBytes > BOUNDS.fetchRequestBodyBytes) {
    return `a request body can be at most ${BOUNDS.fetchRequestBodyBytes} bytes`;
  }
  return undefined;
}

/**
 * A crossing's answers as the isolate's settleFetches takes them: one JSON text (isolated-vm copies a
 * string for a fraction of what its structured copy of the same objects costs: ~15 µs of CPU per answer
 * here), with the bodies of large responses apart in `bodies` (each answer's `bodyAt`), so a body of
 * binary bytes is never escaped into a text several times its size.
 */
export function encodeAnswers(answers: readonly [number, FetchResultWire][], bodies: string[]): string {
  const out = answers.map(
    ([id, result]): [number, FetchResultWire | (FetchResultWire & { bodyAt: number })] =>
      result.error === undefined && result.body.length > INLINE_BODY_CHARS
        ? [id, { ...result, body: '', bodyAt: bodies.push(result.body) - 1 }]
        : [id, result],
  );
  return JSON.stringify(out);
}

/** Response bodies up to this long cross inside the answers' JSON (escaping binary at most 6 times it). */
const INLINE_BODY_CHARS = 16 * 1024;

/** Kept requests as a report shows them: secrets redacted, every field cut to its bound. */
export function requestTraces(kept: readonly KeptRequest[], redactor: Redactor): RequestTrace[] {
  return kept.map((k) => {
    const trace: RequestTrace = {
      method: redactor.bounded(String(k.method), 32),
      url: redactor.bounded(String(k.url), BOUNDS.traceUrlChars),
      status: k.status,
      durationMs: k.durationMs,
      requestHeaders: redactor.headers(k.headers, BOUNDS.traceHeaderChars),
    };
    if (k.error !== undefined) trace.error = redactor.bounded(k.error, BOUNDS.traceHeaderChars);
    return trace;
  });
}
