// The host side of the sandbox: one isolated-vm isolate per loaded function, the host capabilities it
// is given (fetch, timers, URL parsing, crypto), limits, and the rebuild after memory or time runs out.

import { performance } from 'node:perf_hooks';
import ivm from 'isolated-vm';
import { HANDLER_FOR_TYPE, HANDLER_NAMES, type HandlerName, type SegmentEvent } from '../api/events.js';
import { failure, type Outcome, outcomeOfBatchStatus, outcomeOfThrown, SUCCESS } from '../api/outcome.js';
import { settingsProblems } from '../api/settings.js';
import { BOUNDS } from './bounds.js';
import { acceptDelivery, boundLogs, type RawInvocation, type RawResult } from './dispatch-output.js';
import { HostFetcher } from './host-fetch.js';
import { type InvocationTraces, IsolateIo, requestTraces, type TraceBudget } from './host-io.js';
import { hostZlib } from './host-zlib.js';
import { librarySource } from './libraries.js';
import { preludeSource } from './prelude.js';
import { Redactor } from './redact.js';
import {
  type BatchReport,
  DEFAULT_LIMITS,
  type EventTexts,
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
const MAX_MESSAGE_CHARS = 2_000;

/** Options handed to isolated-vm: frozen and without a prototype, so nothing inherited can change them. */
function ivmOptions<const T extends object>(options: T): T {
  const out = Object.create(null) as Record<string, unknown>;
  for (const [key, value] of Object.entries(options)) {
    out[key] = value !== null && typeof value === 'object' ? ivmOptions(value) : value;
  }
  return Object.freeze(out) as T;
}

const REFERENCE_RESULT = ivmOptions({ result: { reference: true } });

/** V8's code cache of each script every isolate evaluates first (libraries, prelude), by file name. */
const codeCaches = new Map<string, ivm.ExternalCopy<ArrayBuffer>>();

/**
 * Compiles one of the sandbox's own scripts with V8's code cache: the first isolate of the process makes
 * it, later ones skip parsing and compiling them (start-up time: `npm run bench:sandbox`).
 */
async function compileShared(isolate: ivm.Isolate, source: string, filename: string): Promise<ivm.Script> {
  const cachedData = codeCaches.get(filename);
  // Not ivmOptions: the cache is an ExternalCopy, which a copy of its fields would not be.
  const options = Object.freeze(
    Object.assign(
      Object.create(null),
      cachedData ? { filename, cachedData } : { filename, produceCachedData: true },
    ),
  );
  // isolated-vm sets these on the script; its typings do not say so.
  const script = (await isolate.compileScript(source, options)) as ivm.Script &
    ivm.CachedDataResult & { cachedDataRejected?: boolean };
  if (!cachedData && script.cachedData) codeCaches.set(filename, script.cachedData);
  if (cachedData && script.cachedDataRejected) codeCaches.delete(filename);
  return script;
}
const REFERENCE = ivmOptions({ reference: true });
const COPY_ARGUMENTS = ivmOptions({ arguments: { copy: true } });
const NO_OPTIONS = ivmOptions({});

interface Vm {
  isolate: ivm.Isolate;
  dispatch: ivm.Reference<(request: string) => void>;
  /** Times out the invocations of a call still pending at its deadline. */
  expire: ivm.Reference<(callId: number) => void>;
  handlers: Set<HandlerName>;
  /** Timers, requests and traces the host holds for this isolate. */
  io: IsolateIo;
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
interface RawOutput extends RawInvocation {
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

/**
 * The events as one JSON array: each as the text it came as where `texts` has it (a stringify saved: ~1.5 µs
 * an event of a runner's CPU), the others stringified. Events nobody kept the text of (dfn test, the
 * sandbox API) are encoded in one stringify of the list: one per event, joined, cost ~25 % more of a
 * trivial micro-batch's CPU (bench:sandbox). The texts travel beside the events, not in a WeakMap keyed
 * by them, which cost ~3 µs more an event (its ephemerons are work for every collection).
 */
export function encodeEvents(events: readonly SegmentEvent[], texts?: EventTexts): EncodedEvents {
  if (!texts?.some((text) => text !== undefined)) {
    return { json: JSON.stringify(events), count: events.length };
  }
  let json = '[';
  for (let i = 0; i < events.length; i++) {
    json += `${i ? ',' : ''}${texts[i] ?? JSON.stringify(events[i])}`;
  }
  return { json: `${json}]`, count: events.length };
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
  private readonly traces = new Map<number, InvocationTraces>();
  /**
   * Bytes of kept requests, in the isolate's IsolateIo while their invocations run and in `traces` until
   * their reports take them: one budget (BOUNDS.traceBytesPerIsolate) across rebuilds, since the traces
   * of a killed isolate's ended invocations still wait here for their reports.
   */
  private readonly traceBudget: TraceBudget = { bytes: 0 };
  /** Dispatch calls awaiting their results from the isolate, by call id. */
  private readonly deliveries = new Map<number, (doneJson: string) => void>();
  private readonly fetcher: HostFetcher;
  private readonly redactor: Redactor;
  private readonly successDetails: boolean;
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
    this.successDetails = options.successDetails ?? true;
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
      nodeVersion: process.version,
    });
  }

  async start(): Promise<void> {
    try {
      const vm = await this.currentVm();
      this.handlers = vm.handlers;
      this.loadLogs = vm.loadLogs;
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  invoke(events: readonly SegmentEvent[], texts?: EventTexts): Promise<InvocationReport[]> {
    return this.invokeEncoded(encodeEvents(events, texts));
  }

  invokeBatch(events: readonly SegmentEvent[], texts?: EventTexts): Promise<BatchReport> {
    return this.invokeBatchEncoded(encodeEvents(events, texts));
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
    const raw = await this.dispatch(ids, events, false, 0);
    return raw.map((r, i) => {
      const outcome = this.outcomeOf(r.result);
      const details = this.detailsShown(outcome, r.interrupted);
      return {
        outcome,
        logs: details ? r.logs : [],
        ...this.takeTraces(ids[i]!, details),
        durationMs: r.result.durationMs ?? 0,
        ...(r.interrupted ? { interrupted: r.interrupted } : {}),
      };
    });
  }

  async invokeBatchEncoded(events: EncodedEvents): Promise<BatchReport> {
    const invalid = this.invalidSettings;
    const all = <T>(value: T): T[] => Array.from({ length: events.count }, () => value);
    if (invalid) return { outcome: invalid, results: all(invalid), logs: [], requests: [], durationMs: 0 };
    const id = ++this.nextId;
    const [r] = await this.dispatch([id], events, true, events.count);
    const { result, logs, interrupted } = r!;
    const outcome = this.outcomeOf(result);
    const results =
      outcome.outcome === 'success' && result.statuses
        ? result.statuses.map(([status, message]) =>
            this.redactOutcome(
              outcomeOfBatchStatus(status, message),
              message.length >= BOUNDS.errorMessageChars,
            ),
          )
        : all(outcome);
    const summary = summarize(results);
    const details = this.detailsShown(summary, interrupted);
    return {
      outcome: summary,
      results,
      logs: details ? logs : [],
      ...this.takeTraces(id, details),
      durationMs: result.durationMs ?? 0,
      ...(interrupted ? { interrupted } : {}),
    };
  }

  /** The isolate's heap in use and its external memory (bytes), or undefined while it has none. */
  async heapBytes(): Promise<number | undefined> {
    const vm = this.vm;
    if (!vm || vm.isolate.isDisposed) return undefined;
    const stats = await vm.isolate.getHeapStatistics();
    return stats.used_heap_size + stats.externally_allocated_size;
  }

  dispose(): void {
    this.disposed = true;
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
  private async dispatch(
    ids: number[],
    events: EncodedEvents,
    batch: boolean,
    statuses: number,
  ): Promise<RawOutput[]> {
    const first = await this.dispatchOnce(ids, events, batch, statuses);
    if (!first.bystander) return first.outputs;
    return (await this.dispatchOnce(ids, events, batch, statuses)).outputs;
  }

  private async dispatchOnce(
    ids: number[],
    events: EncodedEvents,
    batch: boolean,
    statuses: number,
  ): Promise<{ outputs: RawOutput[]; bystander?: boolean }> {
    if (this.disposed) throw new Error('the function sandbox was disposed');
    const vm = await this.currentVm();
    vm.io.begin(ids);
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
      const filled = acceptDelivery(doneJson, outputs, statuses, this.limits.logBytes, this.redactor);
      received += filled.length;
      // Whatever a finished invocation started ends with it: timers cancelled, requests aborted.
      this.endInvocations(
        vm,
        filled.map((i) => ids[i]!),
      );
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
    let deadline: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'stuck'>((resolve) => {
      // isolated-vm disposes an isolate that hit its memory limit without telling anyone: notice it.
      watch = setInterval(() => vm.isolate.isDisposed && resolve('stuck'), DISPOSED_POLL_MS);
      // One deadline per invocation, from the moment the isolate takes the call up: calls run their
      // synchronous part in order, so that is when the previous call's part ended. (Waiting behind other
      // micro-batches is not counted; each of them is bounded the same way.) At the deadline the isolate
      // times out the call's invocations still pending (it stays, state and all). Past it plus a grace,
      // the isolate is stuck in a CPU loop (after an await, in a timer, or another call's) that never let
      // it take that up, so it is killed and the call ends with what had finished. Killing it here, not
      // where the call awaits, also ends a call still queued behind the loop. The timer is the host's:
      // a sleep the isolate asked for would cost two more crossings per call.
      void previousTurn.then(() => {
        if (settled) return;
        deadline = setTimeout(() => {
          expireCall(vm, callId);
          deadline = setTimeout(() => {
            killedQueued = !applied;
            vm.killedFor ??= vm.isolate.isDisposed ? 'memory' : 'time';
            this.kill(vm);
            resolve('stuck');
          }, STUCK_GRACE_MS);
        }, deadlineMs);
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
        await vm.dispatch.apply(undefined, [request], this.dispatchOptions).finally(() => {
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
      clearTimeout(deadline);
      clearInterval(watch);
      this.deliveries.delete(callId);
      // Invocations that ended without a delivery (timed out in a killed isolate, malformed) end here.
      this.endInvocations(vm, ids);
    }
  }

  /** Ends what the host holds for these invocations and keeps their request traces for their reports. */
  private endInvocations(vm: Vm, ids: readonly number[]): void {
    const traces = vm.io.end(ids);
    if (!traces) return;
    for (const [id, t] of traces) {
      // A call run again (a bystander's) replaces what its first run kept.
      const before = this.traces.get(id);
      if (before) this.traceBudget.bytes -= before.bytes;
      this.traces.set(id, t);
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
    const message = this.redactor.bounded(String(r.message ?? ''), MAX_MESSAGE_CHARS, r.messageCut);
    if (r.errorClass === 'Timeout') return failure('Timeout', message);
    return outcomeOfThrown(r.errorClass, message);
  }

  private redactOutcome(o: Outcome, cutBefore: boolean): Outcome {
    return o.outcome === 'success'
      ? o
      : { ...o, message: this.redactor.bounded(o.message, MAX_MESSAGE_CHARS, cutBefore) };
  }

  /** Whether a report shows its logs and requests: always, but for a success when successDetails is false. */
  private detailsShown(outcome: Outcome, interrupted: unknown): boolean {
    return this.successDetails || outcome.outcome !== 'success' || interrupted !== undefined;
  }

  /** An invocation's requests as its report shows them (redacted here, only when `shown`). */
  private takeTraces(id: number, shown: boolean): { requests: RequestTrace[]; requestsNotTraced?: number } {
    const traces = this.traces.get(id);
    if (!traces) return { requests: [] };
    this.traces.delete(id);
    this.traceBudget.bytes -= traces.bytes;
    if (!shown) return { requests: [] };
    const requests = requestTraces(traces.requests, this.redactor);
    return traces.untraced ? { requests, requestsNotTraced: traces.untraced } : { requests };
  }

  private kill(vm: Vm | undefined): void {
    if (!vm) return;
    if (this.vm === vm) this.vm = undefined;
    clearInterval(vm.watchdog);
    if (!vm.isolate.isDisposed) vm.isolate.dispose();
    vm.io.close();
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
    // Disposed by isolated-vm (memory limit) between calls: what the host held for it goes too.
    if (this.vm) this.kill(this.vm);
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
   * top-level loops, getters on handler names and top-level timers that spin all end in a
   * FunctionLoadError instead of a load that never returns.
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
    const io = new IsolateIo(this.fetcher, this.traceBudget);
    try {
      const context = await isolate.createContext();
      const preludeScript = await compileShared(isolate, preludeSource(), 'prelude.js');
      const prelude: ivm.Reference<any> = await preludeScript.run(context, REFERENCE);
      const api: ivm.Reference<any> = await prelude.apply(
        undefined,
        [
          new ivm.Reference((requests: unknown, received: unknown) => io.fetchAll(requests, received)),
          new ivm.Reference((id: number, ms: number | null, timerId: number) => io.sleep(id, ms, timerId)),
          new ivm.Reference((callId: number, resultsJson: string) =>
            this.deliveries.get(callId)?.(resultsJson),
          ),
          new ivm.Callback(hostUrl),
          new ivm.Callback(
            (
              invocation: number,
              op: string,
              a?: unknown,
              b?: unknown,
              c?: unknown,
              d?: unknown,
              e?: unknown,
            ) => io.crypto.call(invocation, op, a, b, c, d, e),
          ),
          new ivm.Reference((op: string, args: unknown) => io.crypto.subtle(op, args)),
          new ivm.Callback(hostZlib),
          new ivm.Callback((name: string) => librarySource(String(name))),
          this.configJson,
        ],
        REFERENCE_RESULT,
      );
      const dispatch = await api.get('dispatch', REFERENCE);
      const expire = await api.get('expire', REFERENCE);
      const setHandlers = await api.get('setHandlers', REFERENCE);
      const takeLoadLogs = await api.get('takeLoadLogs', REFERENCE);
      const settleFetches: ivm.Reference<any> = await api.get('settleFetches', REFERENCE);
      io.answerWith((json, bodies) => {
        // A killed isolate takes no more answers; its requests were aborted with it.
        if (isolate.isDisposed) return;
        try {
          settleFetches.applyIgnored(undefined, [json, bodies], COPY_ARGUMENTS);
        } catch {
          // disposed meanwhile
        }
      });

      armDeadline();
      let script: ivm.Script;
      try {
        script = await isolate.compileScript(this.source, ivmOptions({ filename: this.filename }));
      } catch (err) {
        throw loadError(err, this.filename);
      }
      try {
        await script.run(context, ivmOptions({ timeout: limitMs }));
      } catch (err) {
        throw loadError(err, this.filename, 'the function threw while loading');
      }
      // Timers the top-level code started with no delay run now, within the load's deadline: one that
      // spins fails the load instead of the first invocation. (Later ones are the watchdog's.)
      await new Promise((resolve) => setTimeout(resolve, 0));
      // Reading the handlers runs user code too (a getter on globalThis.onTrack), and any step may wait
      // behind a timer that spins, so each step has the load's timeout.
      const stepCopy = ivmOptions({ result: { copy: true }, timeout: limitMs });
      let defined: string[];
      let loadLogs: string[];
      try {
        const table = await context.eval(
          `({${HANDLER_NAMES.map((n) => `${n}: typeof ${n} === 'function' ? ${n} : undefined`).join(', ')}})`,
          ivmOptions({ reference: true, timeout: limitMs }),
        );
        defined = (await setHandlers.apply(undefined, [table.derefInto()], stepCopy)) as string[];
        const logsJson = await takeLoadLogs.apply(undefined, [], stepCopy);
        loadLogs = boundLogs(JSON.parse(String(logsJson)), this.limits.logBytes, this.redactor);
      } catch (err) {
        throw loadError(err, this.filename, 'the function failed while its handlers were read');
      }
      if (!Array.isArray(defined)) defined = [];
      return {
        isolate,
        dispatch,
        expire,
        loadLogs,
        calls: 0,
        turn: Promise.resolve(),
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

/** Queues the deadline of a call into its isolate; one that was killed meanwhile has nothing to time out. */
function expireCall(vm: Vm, callId: number): void {
  try {
    vm.expire.applyIgnored(undefined, [callId], NO_OPTIONS);
  } catch {
    // disposed: the backstop ends the call
  }
}

/** The batch's overall outcome: success when every event succeeded, else a retry if any, else a discard. */
export function summarize(results: Outcome[]): Outcome {
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
    // As Node's: "Invalid URL", code ERR_INVALID_URL, the input (and the base) as properties.
    return {
      error: 'Invalid URL',
      code: 'ERR_INVALID_URL',
      input: a,
      ...(op === 'parse' && b !== undefined ? { base: b } : {}),
    };
  }
}
