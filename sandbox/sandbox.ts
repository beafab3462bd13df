// The host side of the sandbox: one isolated-vm isolate per loaded function, the host capabilities it
// is given (fetch, timers, URL parsing, crypto), limits, and the rebuild after memory or time runs out.

import { createHash, createHmac, getHashes, randomBytes, randomUUID } from 'node:crypto';
import ivm from 'isolated-vm';
import { HANDLER_FOR_TYPE, HANDLER_NAMES, type HandlerName, type SegmentEvent } from '../api/events.js';
import { failure, type Outcome, outcomeOfBatchStatus, outcomeOfThrown, SUCCESS } from '../api/outcome.js';
import { settingsProblems } from '../api/settings.js';
import { BOUNDS } from './bounds.js';
import { boundLogs, parseDispatchOutput, type RawResult } from './dispatch-output.js';
import { type FetchRequestWire, HostFetcher } from './host-fetch.js';
import { type InvocationTraces, IsolateIo } from './host-io.js';
import { LIBRARIES } from './libraries.js';
import { preludeSource } from './prelude.js';
import { Redactor } from './redact.js';
import {
  type BatchReport,
  DEFAULT_LIMITS,
  FunctionLoadError,
  type FunctionSandbox,
  type InvocationReport,
  type RequestTrace,
  type SandboxLimits,
  type SandboxOptions,
} from './types.js';

/** Extra wall-clock time past the invocation limit before the host decides the isolate is stuck in a CPU loop. */
const STUCK_GRACE_MS = 500;
const DISPOSED_POLL_MS = 100;
const MAX_MESSAGE_CHARS = 2_000;

/** Options handed to isolated-vm: frozen and without a prototype, so nothing inherited can change them. */
function ivmOptions<const T extends object>(options: T): T {
  const out = Object.create(null) as Record<string, unknown>;
  for (const [key, value] of Object.entries(options)) {
    out[key] = value !== null && typeof value === 'object' ? ivmOptions(value) : value;
  }
  return Object.freeze(out) as T;
}

const COPY_RESULT = ivmOptions({ result: { copy: true } });
const REFERENCE_RESULT = ivmOptions({ result: { reference: true } });
const REFERENCE = ivmOptions({ reference: true });

interface Vm {
  isolate: ivm.Isolate;
  dispatch: ivm.Reference<(request: string) => void>;
  takeLoadLogs: ivm.Reference<() => string>;
  handlers: Set<HandlerName>;
  /** Timers, requests and traces the host holds for this isolate. */
  io: IsolateIo;
  /** Why the host killed it, when it did. */
  killedFor?: 'time' | 'memory';
}

export async function loadFunction(source: string, options: SandboxOptions = {}): Promise<FunctionSandbox> {
  const sandbox = new IsolatedFunction(source, options);
  await sandbox.start();
  return sandbox;
}

class IsolatedFunction implements FunctionSandbox {
  readonly limits: SandboxLimits;
  handlers: ReadonlySet<HandlerName> = new Set();
  loadLogs: string[] = [];
  rebuilds = 0;

  private vm: Vm | undefined;
  private building: Promise<Vm> | undefined;
  private disposed = false;
  private nextId = 0;
  private readonly traces = new Map<number, InvocationTraces>();
  /** Dispatch calls awaiting their results from the isolate, by call id. */
  private readonly deliveries = new Map<number, (resultsJson: string) => void>();
  private readonly fetcher: HostFetcher;
  private readonly redactor: Redactor;
  private readonly filename: string;
  private readonly configJson: string;
  private readonly dispatchOptions: ivm.ReferenceApplyOptions;
  /** Set when the settings fail the function's schema: every invocation then ends with it. */
  private readonly invalidSettings: Outcome | undefined;

  constructor(
    private readonly source: string,
    options: SandboxOptions,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.filename = options.filename ?? 'function.js';
    this.dispatchOptions = ivmOptions({ arguments: { copy: true }, timeout: this.limits.timeoutMs });
    this.redactor = new Redactor(options.sensitiveValues ?? []);
    this.fetcher = new HostFetcher({
      allowPrivateNetwork: options.allowPrivateNetwork ?? false,
      timeoutMs: this.limits.fetchTimeoutMs,
      maxResponseBytes: this.limits.fetchMaxResponseBytes,
    });
    const problems = settingsProblems(options.settingsSchema ?? [], options.settings ?? {});
    this.invalidSettings = problems.length ? failure('InvalidSettings', problems.join('; ')) : undefined;
    this.configJson = JSON.stringify({
      logBytes: this.limits.logBytes,
      bounds: BOUNDS,
      cacheEntries: this.limits.cacheEntries,
      cacheBytes: this.limits.cacheBytes,
      settings: JSON.stringify(options.settings ?? {}),
      handlerForType: HANDLER_FOR_TYPE,
    });
  }

  async start(): Promise<void> {
    try {
      const vm = await this.currentVm();
      this.handlers = vm.handlers;
      this.loadLogs = boundLogs(
        JSON.parse(await vm.takeLoadLogs.apply(undefined, [], COPY_RESULT)),
        this.limits.logBytes,
        this.redactor,
      );
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  async invoke(events: readonly SegmentEvent[]): Promise<InvocationReport[]> {
    if (events.length === 0) return [];
    const invalid = this.invalidSettings;
    if (invalid) return events.map(() => ({ outcome: invalid, logs: [], requests: [], durationMs: 0 }));
    const ids = events.map(() => ++this.nextId);
    const raw = await this.dispatch(ids, events, false);
    return raw.map((r, i) => ({
      outcome: this.outcomeOf(r.result),
      logs: r.logs,
      ...this.takeTraces(ids[i]!),
      durationMs: r.result.durationMs ?? 0,
    }));
  }

  async invokeBatch(events: readonly SegmentEvent[]): Promise<BatchReport> {
    const invalid = this.invalidSettings;
    if (invalid)
      return { outcome: invalid, results: events.map(() => invalid), logs: [], requests: [], durationMs: 0 };
    const id = ++this.nextId;
    const [r] = await this.dispatch([id], events, true, events.length);
    const { result, logs } = r!;
    const outcome = this.outcomeOf(result);
    const results =
      outcome.outcome === 'success' && result.statuses
        ? result.statuses.map(([status, message]) =>
            this.redactOutcome(
              outcomeOfBatchStatus(status, message),
              message.length >= BOUNDS.errorMessageChars,
            ),
          )
        : events.map(() => outcome);
    return {
      outcome: summarize(results),
      results,
      logs,
      ...this.takeTraces(id),
      durationMs: result.durationMs ?? 0,
    };
  }

  dispose(): void {
    this.disposed = true;
    this.kill(this.vm);
    this.vm = undefined;
    this.fetcher.destroy();
  }

  // -------------------------------------------------------------------------------------------

  private async dispatch(
    ids: number[],
    events: readonly SegmentEvent[],
    batch: boolean,
    statuses = 0,
  ): Promise<{ result: RawResult; logs: string[] }[]> {
    if (this.disposed) throw new Error('the function sandbox was disposed');
    const vm = await this.currentVm();
    vm.io.begin(ids);
    const callId = ids[0]!;
    const request = JSON.stringify({ callId, ids, events, batch, deadlineMs: this.limits.timeoutMs });
    const delivered = new Promise<string>((resolve) => this.deliveries.set(callId, resolve));
    let backstop: NodeJS.Timeout | undefined;
    let watch: NodeJS.Timeout | undefined;
    let stuck!: (why: 'stuck') => void;
    const gaveUp = new Promise<'stuck'>((resolve) => {
      stuck = resolve;
      // isolated-vm disposes an isolate that hit its memory limit without telling anyone: notice it.
      watch = setInterval(() => vm.isolate.isDisposed && resolve('stuck'), DISPOSED_POLL_MS);
    });
    try {
      try {
        // Resolves once the dispatcher has started every handler (the synchronous part, bounded by
        // `timeout`); a call may first wait while the isolate finishes another micro-batch's work.
        await vm.dispatch.apply(undefined, [request], this.dispatchOptions);
      } catch (err) {
        // A promise rejection that user code left unhandled is reported here by isolated-vm; the
        // invocations go on and deliver their results. Only running out of memory or time is fatal.
        const message = err instanceof Error ? err.message : String(err);
        if (!vm.killedFor && /memory limit/i.test(message)) vm.killedFor = 'memory';
        if (!vm.killedFor && /Script execution timed out/i.test(message)) vm.killedFor = 'time';
        if (vm.killedFor || vm.isolate.isDisposed) return this.killed(vm, ids.length);
      }
      // The handlers are running: past their deadline (which the in-isolate timer reports) plus a grace,
      // the isolate must be stuck in a CPU loop, possibly after an await.
      backstop = setTimeout(() => stuck('stuck'), this.limits.timeoutMs + STUCK_GRACE_MS);
      const out = await Promise.race([delivered, gaveUp]);
      if (out === 'stuck') {
        vm.killedFor ??= vm.isolate.isDisposed ? 'memory' : 'time';
        return this.killed(vm, ids.length);
      }
      return parseDispatchOutput(out, ids.length, statuses, this.limits.logBytes, this.redactor);
    } finally {
      clearTimeout(backstop);
      clearInterval(watch);
      this.deliveries.delete(callId);
      // Whatever the invocations started ends with them: timers cancelled, requests aborted.
      const traces = vm.io.end(ids);
      if (traces) for (const [id, t] of traces) this.traces.set(id, t);
    }
  }

  private killed(vm: Vm, count: number): { result: RawResult; logs: string[] }[] {
    this.kill(vm);
    return Array.from({ length: count }, () => ({ result: this.timeoutResult(vm), logs: [] }));
  }

  private timeoutResult(vm: Vm): RawResult {
    const message =
      vm.killedFor === 'memory'
        ? `the function ran out of memory (limit ${this.limits.memoryMb} MiB); its isolate was rebuilt`
        : `the function exceeded its time limit of ${this.limits.timeoutMs} ms; its isolate was rebuilt`;
    return { ok: false, errorClass: 'Timeout', message, durationMs: this.limits.timeoutMs };
  }

  private outcomeOf(r: RawResult): Outcome {
    if (r.ok) return SUCCESS;
    const message = this.redactor.bounded(String(r.message ?? ''), MAX_MESSAGE_CHARS, r.messageCut);
    if (r.errorClass === 'Timeout') return failure('Timeout', message);
    return outcomeOfThrown(r.errorClass, message);
  }

  private redactOutcome(o: Outcome, cutBefore: boolean): Outcome {
    return o.outcome === 'success'
      ? o
      : { ...o, message: this.redactor.bounded(o.message, MAX_MESSAGE_CHARS, cutBefore) };
  }

  private takeTraces(id: number): { requests: RequestTrace[]; requestsNotTraced?: number } {
    const traces = this.traces.get(id);
    this.traces.delete(id);
    if (!traces) return { requests: [] };
    return traces.untraced
      ? { requests: traces.requests, requestsNotTraced: traces.untraced }
      : { requests: traces.requests };
  }

  private kill(vm: Vm | undefined): void {
    if (!vm) return;
    if (this.vm === vm) this.vm = undefined;
    if (!vm.isolate.isDisposed) vm.isolate.dispose();
    vm.io.close();
  }

  /** The live isolate, built on first use and rebuilt after it was disposed. */
  private currentVm(): Promise<Vm> {
    if (this.vm && !this.vm.isolate.isDisposed) return Promise.resolve(this.vm);
    // Disposed by isolated-vm (memory limit) between calls: what the host held for it goes too.
    if (this.vm) this.kill(this.vm);
    if (!this.building) {
      const first = this.rebuilds === 0 && this.handlers.size === 0;
      this.building = this.build()
        .then((vm) => {
          this.vm = vm;
          if (!first) this.rebuilds++;
          return vm;
        })
        .finally(() => {
          this.building = undefined;
        });
    }
    return this.building;
  }

  private async build(): Promise<Vm> {
    const isolate = new ivm.Isolate({
      memoryLimit: this.limits.memoryMb,
      onCatastrophicError: (message) => {
        process.stderr.write(`dfn: isolated-vm reported a catastrophic error: ${message}\n`);
      },
    });
    const io = new IsolateIo(this.fetcher, this.redactor);
    try {
      const context = await isolate.createContext();
      for (const library of LIBRARIES) {
        const script = await isolate.compileScript(library.source, { filename: library.filename });
        await script.run(context);
      }
      const prelude: ivm.Reference<any> = await context.eval(
        preludeSource(),
        ivmOptions({ filename: 'prelude.js', reference: true }),
      );
      const api: ivm.Reference<any> = await prelude.apply(
        undefined,
        [
          new ivm.Reference((id: number, req: FetchRequestWire) => io.fetch(id, req)),
          new ivm.Reference((id: number, ms: number | null, timerId: number) => io.sleep(id, ms, timerId)),
          new ivm.Reference((callId: number, resultsJson: string) =>
            this.deliveries.get(callId)?.(resultsJson),
          ),
          new ivm.Callback(hostUrl),
          new ivm.Callback(hostCrypto),
          this.configJson,
        ],
        REFERENCE_RESULT,
      );
      const dispatch = await api.get('dispatch', REFERENCE);
      const setHandlers = await api.get('setHandlers', REFERENCE);
      const takeLoadLogs = await api.get('takeLoadLogs', REFERENCE);

      let script: ivm.Script;
      try {
        script = await isolate.compileScript(this.source, ivmOptions({ filename: this.filename }));
      } catch (err) {
        throw loadError(err, this.filename);
      }
      try {
        await script.run(context, ivmOptions({ timeout: this.limits.timeoutMs }));
      } catch (err) {
        throw loadError(err, this.filename, 'the function threw while loading');
      }
      const table = await context.eval(
        `({${HANDLER_NAMES.map((n) => `${n}: typeof ${n} === 'function' ? ${n} : undefined`).join(', ')}})`,
        REFERENCE,
      );
      const defined = (await setHandlers.apply(undefined, [table.derefInto()], COPY_RESULT)) as string[];
      return {
        isolate,
        dispatch,
        takeLoadLogs,
        handlers: new Set(
          defined.filter((n): n is HandlerName => (HANDLER_NAMES as readonly string[]).includes(n)),
        ),
        io,
      };
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      io.close();
      throw err;
    }
  }
}

/** The batch's overall outcome: success when every event succeeded, else a retry if any, else a discard. */
function summarize(results: Outcome[]): Outcome {
  return (
    results.find((r) => r.outcome === 'retry') ?? results.find((r) => r.outcome === 'discard') ?? SUCCESS
  );
}

function loadError(err: unknown, filename: string, prefix?: string): FunctionLoadError {
  const e = err as { name?: string; message?: string; stack?: string };
  const message = String(e?.message ?? err);
  // Syntax errors carry "[file:line:col]" in the message; runtime errors carry "at file:line:col" in the stack.
  const escaped = filename.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const where =
    new RegExp(`\\[${escaped}:(\\d+):(\\d+)\\]`).exec(message) ??
    new RegExp(`${escaped}:(\\d+):(\\d+)`).exec(String(e?.stack ?? ''));
  const text = message.replace(/\s*\[[^\]]*:\d+:\d+\]$/, '');
  const label = e?.name && e.name !== 'Error' ? `${e.name}: ${text}` : text;
  return new FunctionLoadError(
    prefix ? `${prefix}: ${label}` : label,
    where ? Number(where[1]) : undefined,
    where ? Number(where[2]) : undefined,
  );
}

const URL_PARTS = [
  'href',
  'protocol',
  'username',
  'password',
  'host',
  'hostname',
  'port',
  'pathname',
  'search',
  'hash',
] as const;

function urlParts(u: URL) {
  return {
    href: u.href,
    origin: u.origin,
    protocol: u.protocol,
    username: u.username,
    password: u.password,
    host: u.host,
    hostname: u.hostname,
    port: u.port,
    pathname: u.pathname,
    search: u.search,
    hash: u.hash,
  };
}

/** URL parsing for the isolate's URL class: Node's WHATWG parser, so the semantics are exact. */
function hostUrl(op: string, a: string, b?: string, c?: string) {
  const long = [a, b, c].find((s) => typeof s === 'string' && s.length > BOUNDS.urlChars);
  if (long !== undefined) return { error: `Invalid URL: longer than ${BOUNDS.urlChars} characters` };
  try {
    if (op === 'parse') return urlParts(b === undefined ? new URL(a) : new URL(a, b));
    if (op === 'set' && (URL_PARTS as readonly string[]).includes(String(b))) {
      const u = new URL(a);
      (u as unknown as Record<string, string>)[String(b)] = String(c);
      return urlParts(u);
    }
    return { error: `unsupported URL operation ${op}` };
  } catch {
    return { error: `Invalid URL: ${a}` };
  }
}

const HASHES = new Set(getHashes().map((h) => h.toLowerCase()));

/** Bytes for the isolate: a latin1 string it turns into bytes itself (see FetchResultWire's body). */
const binary = (bytes: Buffer) => bytes.toString('latin1');

const tooMuch = (data: unknown) =>
  !(data instanceof Uint8Array) || data.byteLength > BOUNDS.hashInputBytes
    ? { error: `crypto: at most ${BOUNDS.hashInputBytes} bytes can be hashed in one digest` }
    : undefined;

function hostCrypto(op: string, a?: unknown, b?: unknown, c?: unknown) {
  try {
    switch (op) {
      case 'check': {
        const algorithm = String(b).toLowerCase();
        return HASHES.has(algorithm) ? true : { error: `Digest method not supported: ${String(b)}` };
      }
      case 'hash':
        return (
          tooMuch(b) ??
          binary(
            createHash(String(a))
              .update(b as Uint8Array)
              .digest(),
          )
        );
      case 'hmac':
        return (
          tooMuch(b) ??
          tooMuch(c) ??
          binary(
            createHmac(String(a), c as Uint8Array)
              .update(b as Uint8Array)
              .digest(),
          )
        );
      case 'randomBytes': {
        const n = Number(a);
        if (!Number.isInteger(n) || n < 0 || n > BOUNDS.randomBytes) {
          return { error: `randomBytes: size must be 0..${BOUNDS.randomBytes}` };
        }
        return binary(randomBytes(n));
      }
      case 'randomUUID':
        return randomUUID();
      default:
        return { error: `unsupported crypto operation ${op}` };
    }
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}
