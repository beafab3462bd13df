// The host side of the sandbox: one isolated-vm isolate per loaded function, the host capabilities it
// is given (fetch, timers, URL parsing, crypto), limits, and the rebuild after memory or time runs out.

import { createHash, createHmac, getHashes, randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import ivm from 'isolated-vm';
import { HANDLER_FOR_TYPE, HANDLER_NAMES, type HandlerName, type SegmentEvent } from '../api/events.js';
import { failure, type Outcome, outcomeOfBatchStatus, outcomeOfThrown, SUCCESS } from '../api/outcome.js';
import { settingsProblems } from '../api/settings.js';
import { type FetchRequestWire, type FetchResultWire, HostFetcher } from './host-fetch.js';
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
/**
 * The watchdog samples the isolate's CPU time this often. With no invocation in flight, CPU time adds up
 * only from timers or promises user code left behind; once that idle CPU reaches the invocation time
 * limit (samples busier than IDLE_BUSY_FRACTION in a row), the isolate is killed.
 */
const WATCHDOG_MS = 250;
const IDLE_BUSY_FRACTION = 0.1;
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_MESSAGE_CHARS = 2_000;

/** What the in-isolate dispatcher reports for one invocation (validated here: user code could forge it). */
interface RawResult {
  ok: boolean;
  errorClass?: string;
  message?: string;
  durationMs?: number;
  statuses?: [number, string][];
}

interface Vm {
  isolate: ivm.Isolate;
  dispatch: ivm.Reference<(request: string) => void>;
  handlers: Set<HandlerName>;
  /** Console output of the function's top-level code while this isolate loaded it. */
  loadLogs: string[];
  /** Dispatch calls in flight: while there are none, CPU time used by the isolate is the watchdog's. */
  calls: number;
  /** Settles when the last dispatch call issued has been taken up and its synchronous part has run. */
  turn: Promise<void>;
  watchdog?: NodeJS.Timeout;
  /** Why the host killed it, when it did. */
  killedFor?: 'time' | 'memory';
}

/** One event's raw result; `interrupted` when it had not finished as its isolate was killed. */
interface RawOutput {
  result: RawResult;
  logs: string[];
  interrupted?: 'time' | 'memory';
}

export async function loadFunction(source: string, options: SandboxOptions = {}): Promise<FunctionSandbox> {
  return loadEncodedFunction(source, options);
}

/** Events already serialised as one JSON array (as they cross from the supervisor), and how many. */
export interface EncodedEvents {
  json: string;
  count: number;
}

/** The in-process sandbox with entries that take events as JSON: the sandbox process never re-encodes them. */
export interface EncodedFunctionSandbox extends FunctionSandbox {
  invokeEncoded(events: EncodedEvents): Promise<InvocationReport[]>;
  invokeBatchEncoded(events: EncodedEvents): Promise<BatchReport>;
}

export async function loadEncodedFunction(
  source: string,
  options: SandboxOptions = {},
): Promise<EncodedFunctionSandbox> {
  const sandbox = new IsolatedFunction(source, options);
  await sandbox.start();
  return sandbox;
}

export function encodeEvents(events: readonly SegmentEvent[]): EncodedEvents {
  return { json: JSON.stringify(events), count: events.length };
}

class IsolatedFunction implements EncodedFunctionSandbox {
  readonly limits: SandboxLimits;
  handlers: ReadonlySet<HandlerName> = new Set();
  loadLogs: string[] = [];
  rebuilds = 0;

  private vm: Vm | undefined;
  private building: Promise<Vm> | undefined;
  private disposed = false;
  private nextId = 0;
  private readonly traces = new Map<number, RequestTrace[]>();
  /** Dispatch calls awaiting their results from the isolate, by call id. */
  private readonly deliveries = new Map<number, (doneJson: string) => void>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly fetcher: HostFetcher;
  private readonly redactor: Redactor;
  private readonly filename: string;
  private readonly configJson: string;
  /** Set when the settings fail the function's schema: every invocation then ends with it. */
  private readonly invalidSettings: Outcome | undefined;

  constructor(
    private readonly source: string,
    options: SandboxOptions,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.filename = options.filename ?? 'function.js';
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
      this.loadLogs = this.redactor.lines(vm.loadLogs);
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  invoke(events: readonly SegmentEvent[]): Promise<InvocationReport[]> {
    return this.invokeEncoded(encodeEvents(events));
  }

  invokeBatch(events: readonly SegmentEvent[]): Promise<BatchReport> {
    return this.invokeBatchEncoded(encodeEvents(events));
  }

  async invokeEncoded(events: EncodedEvents): Promise<InvocationReport[]> {
    if (events.count === 0) return [];
    const invalid = this.invalidSettings;
    if (invalid)
      return Array.from({ length: events.count }, () => ({
        outcome: invalid,
        logs: [],
        requests: [],
        durationMs: 0,
      }));
    const ids = Array.from({ length: events.count }, () => ++this.nextId);
    const raw = await this.dispatch(ids, events, false);
    return raw.map((r, i) => ({
      outcome: this.outcomeOf(r.result),
      logs: this.redactor.lines(r.logs),
      requests: this.takeTraces(ids[i]!),
      durationMs: r.result.durationMs ?? 0,
      ...(r.interrupted ? { interrupted: r.interrupted } : {}),
    }));
  }

  async invokeBatchEncoded(events: EncodedEvents): Promise<BatchReport> {
    const invalid = this.invalidSettings;
    const all = <T>(value: T): T[] => Array.from({ length: events.count }, () => value);
    if (invalid) return { outcome: invalid, results: all(invalid), logs: [], requests: [], durationMs: 0 };
    const id = ++this.nextId;
    const [r] = await this.dispatch([id], events, true);
    const { result, logs, interrupted } = r!;
    const outcome = this.outcomeOf(result);
    const results =
      outcome.outcome === 'success' && result.statuses
        ? result.statuses.map(([status, message]) =>
            this.redactOutcome(outcomeOfBatchStatus(status, message)),
          )
        : all(outcome);
    return {
      outcome: summarize(results),
      results,
      logs: this.redactor.lines(logs),
      requests: this.takeTraces(id),
      durationMs: result.durationMs ?? 0,
      ...(interrupted ? { interrupted } : {}),
    };
  }

  dispose(): void {
    this.disposed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.kill(this.vm);
    this.vm = undefined;
    this.fetcher.destroy();
  }

  // -------------------------------------------------------------------------------------------

  /**
   * A call that arrived while code left behind by earlier invocations kept the isolate busy, and that
   * never got its turn before the isolate was killed for it, is not to blame: it runs once more on the
   * rebuilt isolate.
   */
  private async dispatch(ids: number[], events: EncodedEvents, batch: boolean): Promise<RawOutput[]> {
    const first = await this.dispatchOnce(ids, events, batch);
    return first.bystander ? (await this.dispatchOnce(ids, events, batch)).outputs : first.outputs;
  }

  private async dispatchOnce(
    ids: number[],
    events: EncodedEvents,
    batch: boolean,
  ): Promise<{ outputs: RawOutput[]; bystander?: boolean }> {
    if (this.disposed) throw new Error('the function sandbox was disposed');
    const vm = await this.currentVm();
    for (const id of ids) this.traces.set(id, []);
    const callId = ids[0]!;
    const count = ids.length;
    const deadlineMs = this.limits.timeoutMs;
    // Built around the events' JSON as it came, so they are never decoded and encoded again here.
    const request = `{"callId":${callId},"ids":${JSON.stringify(ids)},"batch":${batch},"deadlineMs":${deadlineMs},"events":${events.json}}`;
    const outputs: (RawOutput | undefined)[] = new Array(count);
    let received = 0;
    let allIn!: (v: 'done') => void;
    const delivered = new Promise<'done'>((resolve) => {
      allIn = resolve;
    });
    this.deliveries.set(callId, (doneJson) => {
      received += acceptResults(doneJson, outputs);
      if (received >= count) allIn('done');
    });
    let settled = false;
    /** Whether the call's synchronous part had run; if the backstop fires before, the call was queued. */
    let applied = false;
    let killedQueued = false;
    const previousTurn = vm.turn;
    let turnTaken!: () => void;
    vm.turn = new Promise<void>((resolve) => {
      turnTaken = resolve;
    });
    let watch: NodeJS.Timeout | undefined;
    let backstop: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'stuck'>((resolve) => {
      // isolated-vm disposes an isolate that hit its memory limit without telling anyone: notice it.
      watch = setInterval(() => vm.isolate.isDisposed && resolve('stuck'), DISPOSED_POLL_MS);
      // One deadline per invocation, from the moment the isolate takes the call up: calls run their
      // synchronous part in order, so that is when the previous call's part ended. (Waiting behind other
      // micro-batches is not counted; each of them is bounded the same way.) The isolate's own timer
      // counts from the same moment; past it plus a grace, the isolate is stuck in a CPU loop (after an
      // await, in a timer, or another call's), so it is killed and the call ends with what had finished.
      // Killing it here, not where the call awaits, also ends a call still queued behind the loop.
      void previousTurn.then(() => {
        if (settled) return;
        backstop = setTimeout(() => {
          killedQueued = !applied;
          vm.killedFor ??= vm.isolate.isDisposed ? 'memory' : 'time';
          this.kill(vm);
          resolve('stuck');
        }, deadlineMs + STUCK_GRACE_MS);
      });
    });
    // With no other call in flight, a call still queued when the isolate is killed waited behind code
    // that earlier invocations left running.
    const behindLeftovers = vm.calls === 0;
    vm.calls++;
    try {
      try {
        // Resolves once the dispatcher has started every handler (the synchronous part, bounded by
        // `timeout`); a call may first wait while the isolate finishes another micro-batch's work.
        await vm.dispatch
          .apply(undefined, [request], { arguments: { copy: true }, timeout: deadlineMs })
          .finally(() => {
            applied = true;
            turnTaken();
          });
      } catch (err) {
        // A promise rejection that user code left unhandled is reported here by isolated-vm; the
        // invocations go on and deliver their results. Only running out of memory or time is fatal.
        const message = err instanceof Error ? err.message : String(err);
        if (!vm.killedFor && /memory limit/i.test(message)) vm.killedFor = 'memory';
        if (!vm.killedFor && /Script execution timed out/i.test(message)) vm.killedFor = 'time';
        if (vm.killedFor || vm.isolate.isDisposed) {
          return { outputs: this.killed(vm, outputs), bystander: behindLeftovers && killedQueued };
        }
      }
      if (received < count && (await Promise.race([delivered, gaveUp])) === 'stuck') {
        vm.killedFor ??= vm.isolate.isDisposed ? 'memory' : 'time';
        return { outputs: this.killed(vm, outputs) };
      }
      return { outputs: outputs as RawOutput[] };
    } finally {
      settled = true;
      vm.calls--;
      clearTimeout(backstop);
      clearInterval(watch);
      this.deliveries.delete(callId);
    }
  }

  /** Kills the isolate; what had finished keeps its result, the rest ends as Timeout, marked interrupted. */
  private killed(vm: Vm, outputs: (RawOutput | undefined)[]): RawOutput[] {
    this.kill(vm);
    const interrupted = vm.killedFor ?? 'time';
    return Array.from(outputs, (o) => o ?? { result: this.timeoutResult(vm), logs: [], interrupted });
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
    const message = this.redactor.text(String(r.message ?? '')).slice(0, MAX_MESSAGE_CHARS);
    if (r.errorClass === 'Timeout') return failure('Timeout', message);
    return outcomeOfThrown(r.errorClass, message);
  }

  private redactOutcome(o: Outcome): Outcome {
    return o.outcome === 'success'
      ? o
      : { ...o, message: this.redactor.text(o.message).slice(0, MAX_MESSAGE_CHARS) };
  }

  private takeTraces(id: number): RequestTrace[] {
    const traces = this.traces.get(id) ?? [];
    this.traces.delete(id);
    return traces;
  }

  private kill(vm: Vm | undefined): void {
    if (!vm) return;
    if (this.vm === vm) this.vm = undefined;
    clearInterval(vm.watchdog);
    if (!vm.isolate.isDisposed) vm.isolate.dispose();
  }

  /**
   * The standing watchdog: an isolate busy while no invocation is in flight runs code user code left
   * behind (a timer's loop, a loop after its invocation timed out). Nobody waits on it, so no deadline
   * would ever end it: past the time limit of such idle CPU, it is killed and rebuilt on the next call.
   */
  private watch(vm: Vm): void {
    let lastCpu = vm.isolate.cpuTime;
    let lastAt = performance.now();
    let idleCpuMs = 0;
    vm.watchdog = setInterval(() => {
      if (vm.isolate.isDisposed) return clearInterval(vm.watchdog);
      const cpu = vm.isolate.cpuTime;
      const now = performance.now();
      const busyMs = Number(cpu - lastCpu) / 1e6;
      const wallMs = now - lastAt;
      lastCpu = cpu;
      lastAt = now;
      if (vm.calls > 0 || busyMs < wallMs * IDLE_BUSY_FRACTION) {
        idleCpuMs = 0;
        return;
      }
      idleCpuMs += busyMs;
      if (idleCpuMs >= this.limits.timeoutMs) {
        vm.killedFor = 'time';
        this.kill(vm);
      }
    }, WATCHDOG_MS);
    vm.watchdog.unref();
  }

  /** The live isolate, built on first use and rebuilt after it was disposed. */
  private currentVm(): Promise<Vm> {
    if (this.vm && !this.vm.isolate.isDisposed) return Promise.resolve(this.vm);
    if (this.vm) this.vm = undefined;
    if (!this.building) {
      const first = this.rebuilds === 0 && this.handlers.size === 0;
      this.building = this.build()
        .then((vm) => {
          if (this.disposed) {
            this.kill(vm);
            throw new Error('the function sandbox was disposed');
          }
          this.vm = vm;
          this.watch(vm);
          if (!first) this.rebuilds++;
          return vm;
        })
        .finally(() => {
          this.building = undefined;
        });
    }
    return this.building;
  }

  /**
   * Builds an isolate and loads the function into it, within the invocation time limit (plus the grace):
   * top-level loops, getters on handler names, toJSON of load logs and top-level timers that spin all
   * end in a FunctionLoadError instead of a load that never returns.
   */
  private async build(): Promise<Vm> {
    const limitMs = this.limits.timeoutMs;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const isolate = this.newIsolate();
    // Armed when the function's own code is about to run: building the isolate, the libraries and the
    // prelude is the sandbox's work, which a loaded machine may make slow but never endless.
    const arm = () => {
      timer = setTimeout(() => {
        timedOut = true;
        if (!isolate.isDisposed) isolate.dispose();
      }, limitMs + STUCK_GRACE_MS);
    };
    try {
      return await this.buildIn(isolate, limitMs, arm);
    } catch (err) {
      // A timeout of one load step (isolated-vm's `timeout`) or of the whole load: one clear message.
      const stepTimedOut = err instanceof FunctionLoadError && /Script execution timed out/.test(err.reason);
      if (!timedOut && !stepTimedOut) throw err;
      throw new FunctionLoadError(
        `loading the function did not finish within ${limitMs} ms (a loop, a getter or toJSON that never returns, or a timer that spins, at top level)`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  private newIsolate(): ivm.Isolate {
    return new ivm.Isolate({
      memoryLimit: this.limits.memoryMb,
      onCatastrophicError: (message) => {
        process.stderr.write(`dfn: isolated-vm reported a catastrophic error: ${message}\n`);
      },
    });
  }

  private async buildIn(isolate: ivm.Isolate, limitMs: number, armDeadline: () => void): Promise<Vm> {
    try {
      const context = await isolate.createContext();
      for (const library of LIBRARIES) {
        const script = await isolate.compileScript(library.source, { filename: library.filename });
        await script.run(context);
      }
      const prelude: ivm.Reference<any> = await context.eval(preludeSource(), {
        filename: 'prelude.js',
        reference: true,
      });
      const api: ivm.Reference<any> = await prelude.apply(
        undefined,
        [
          new ivm.Reference((id: number, req: FetchRequestWire) => this.hostFetch(id, req)),
          new ivm.Reference((ms: number) => this.hostSleep(ms)),
          new ivm.Reference((callId: number, resultsJson: string) =>
            this.deliveries.get(callId)?.(resultsJson),
          ),
          new ivm.Callback(hostUrl),
          new ivm.Callback(hostCrypto),
          this.configJson,
        ],
        { result: { reference: true } },
      );
      const dispatch = await api.get('dispatch', { reference: true });
      const setHandlers = await api.get('setHandlers', { reference: true });
      const takeLoadLogs = await api.get('takeLoadLogs', { reference: true });

      armDeadline();
      let script: ivm.Script;
      try {
        script = await isolate.compileScript(this.source, { filename: this.filename });
      } catch (err) {
        throw loadError(err, this.filename);
      }
      try {
        await script.run(context, { timeout: limitMs });
      } catch (err) {
        throw loadError(err, this.filename, 'the function threw while loading');
      }
      // Timers the top-level code started with no delay run now, within the load's deadline: one that
      // spins fails the load instead of the first invocation. (Later ones are the watchdog's.)
      await new Promise((resolve) => setTimeout(resolve, 0));
      // Reading the handlers and the load logs runs user code too (a getter on globalThis.onTrack, a
      // toJSON), so each step has the load's timeout.
      let defined: string[];
      let loadLogs: string[];
      try {
        const table = await context.eval(
          `({${HANDLER_NAMES.map((n) => `${n}: typeof ${n} === 'function' ? ${n} : undefined`).join(', ')}})`,
          { reference: true, timeout: limitMs },
        );
        defined = (await setHandlers.apply(undefined, [table.derefInto()], {
          result: { copy: true },
          timeout: limitMs,
        })) as string[];
        const logsJson = await takeLoadLogs.apply(undefined, [], {
          result: { copy: true },
          timeout: limitMs,
        });
        loadLogs = sanitizeLines(JSON.parse(String(logsJson)));
      } catch (err) {
        throw loadError(err, this.filename, 'the function failed while its handlers were read');
      }
      if (!Array.isArray(defined)) defined = [];
      return {
        isolate,
        dispatch,
        loadLogs,
        calls: 0,
        turn: Promise.resolve(),
        handlers: new Set(
          defined.filter((n): n is HandlerName => (HANDLER_NAMES as readonly string[]).includes(n)),
        ),
      };
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    }
  }

  private async hostFetch(id: number, req: FetchRequestWire): Promise<FetchResultWire> {
    const start = performance.now();
    let result: FetchResultWire;
    try {
      result = await this.fetcher.fetch(req);
    } catch (err) {
      result = { error: err instanceof Error ? err.message : String(err), type: 'system' };
    }
    const trace: RequestTrace = {
      method: String(req.method),
      url: this.redactor.text(String(req.url)),
      status: result.error === undefined ? result.status : 0,
      durationMs: Math.round(performance.now() - start),
      requestHeaders: this.redactor.headers(req.headers),
    };
    if (result.error !== undefined) trace.error = this.redactor.text(result.error);
    this.traces.get(id)?.push(trace);
    return result;
  }

  private hostSleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.timers.delete(timer);
          resolve();
        },
        Math.min(Math.max(0, Number(ms) || 0), MAX_TIMER_MS),
      );
      this.timers.add(timer);
    });
  }
}

/** The batch's overall outcome: success when every event succeeded, else a retry if any, else a discard. */
export function summarize(results: Outcome[]): Outcome {
  return (
    results.find((r) => r.outcome === 'retry') ?? results.find((r) => r.outcome === 'discard') ?? SUCCESS
  );
}

/**
 * Takes one delivery of finished invocations from the dispatcher, `[[index, result, logs], ...]`, into
 * `outputs` (first result per index wins) and returns how many it filled. A delivery that is not that
 * shape (user code could disturb the dispatcher's JSON) ends every invocation still open as malformed.
 */
function acceptResults(doneJson: unknown, outputs: (RawOutput | undefined)[]): number {
  let done: unknown;
  try {
    done = typeof doneJson === 'string' ? JSON.parse(doneJson) : undefined;
  } catch {
    done = undefined;
  }
  let filled = 0;
  if (!Array.isArray(done) || !done.every(isDoneEntry)) {
    for (let i = 0; i < outputs.length; i++) {
      if (outputs[i]) continue;
      const message = 'the sandbox returned a malformed result';
      outputs[i] = { result: { ok: false, errorClass: 'Error', message }, logs: [] };
      filled++;
    }
    return filled;
  }
  for (const [i, result, logs] of done as [number, unknown, unknown][]) {
    if (i >= outputs.length || outputs[i]) continue;
    outputs[i] = { result: sanitizeResult(result), logs: sanitizeLines(logs) };
    filled++;
  }
  return filled;
}

function isDoneEntry(entry: unknown): boolean {
  return Array.isArray(entry) && entry.length === 3 && Number.isSafeInteger(entry[0]) && entry[0] >= 0;
}

function sanitizeResult(r: unknown): RawResult {
  if (typeof r !== 'object' || r === null)
    return { ok: false, errorClass: 'Error', message: 'malformed result' };
  const v = r as Record<string, unknown>;
  const result: RawResult = {
    ok: v.ok === true,
    durationMs: typeof v.durationMs === 'number' && v.durationMs >= 0 ? v.durationMs : 0,
  };
  if (typeof v.errorClass === 'string') result.errorClass = v.errorClass;
  if (typeof v.message === 'string') result.message = v.message;
  if (Array.isArray(v.statuses)) {
    result.statuses = v.statuses.map((s) =>
      Array.isArray(s) ? [Number(s[0]) || 0, String(s[1] ?? '')] : [0, 'malformed status entry'],
    );
  }
  return result;
}

function sanitizeLines(lines: unknown): string[] {
  return Array.isArray(lines) ? lines.map((l) => String(l)) : [];
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

function hostCrypto(op: string, a?: unknown, b?: unknown, c?: unknown) {
  try {
    switch (op) {
      case 'check': {
        const algorithm = String(b).toLowerCase();
        return HASHES.has(algorithm) ? true : { error: `Digest method not supported: ${String(b)}` };
      }
      case 'hash':
        return new Uint8Array(
          createHash(String(a))
            .update(b as Uint8Array)
            .digest(),
        );
      case 'hmac':
        return new Uint8Array(
          createHmac(String(a), c as Uint8Array)
            .update(b as Uint8Array)
            .digest(),
        );
      case 'randomBytes':
        return new Uint8Array(randomBytes(Number(a)));
      case 'randomUUID':
        return randomUUID();
      default:
        return { error: `unsupported crypto operation ${op}` };
    }
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}
