// The supervised sandbox: the function runs in a sandbox process (child.ts) that the runner replaces when
// it dies or stops answering. Events it held are rerun one per call (quarantine), so only the guilty are charged.

import type { HandlerName, SegmentEvent } from '../api/events.js';
import { failure } from '../api/outcome.js';
import { QuarantineGate } from './quarantine-gate.js';
import { summarize } from './sandbox.js';
import { type CallOutcome, type ProcessLimits, SandboxProcess } from './sandbox-process.js';
import {
  type BatchReport,
  DEFAULT_LIMITS,
  type EventTexts,
  type FunctionSandbox,
  type InvocationReport,
  type SandboxOptions,
} from './types.js';

export interface SupervisorHooks {
  /** A sandbox process ended (crashed, was killed, or outgrew its memory); the next call starts another. */
  onProcessExit?: (reason: string) => void;
}

/** The process limits for a sandbox's limits: heap and RSS well above what the isolate may hold. */
export function processLimits(options: SandboxOptions): ProcessLimits {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  return {
    timeoutMs: limits.timeoutMs,
    heapMb: Math.max(256, 2 * limits.memoryMb),
    rssMb: 4 * limits.memoryMb + 512,
  };
}

/** Loads the function into a supervised sandbox process; same contract as loadFunction. */
export async function loadSupervisedFunction(
  source: string,
  options: SandboxOptions = {},
  hooks: SupervisorHooks = {},
): Promise<FunctionSandbox> {
  const sandbox = new SupervisedFunction(source, options, hooks);
  await sandbox.start();
  return sandbox;
}

type Suspect = { kind: 'died'; reason: string } | { kind: 'interrupted' };

class SupervisedFunction implements FunctionSandbox {
  handlers: ReadonlySet<HandlerName> = new Set();
  loadLogs: readonly string[] = [];
  private current: SandboxProcess | undefined;
  private starting: Promise<SandboxProcess> | undefined;
  private readonly gate = new QuarantineGate();
  private readonly limits: ProcessLimits;
  private restarts = 0;
  private retiredRebuilds = 0;
  private disposed = false;

  constructor(
    private readonly source: string,
    private readonly options: SandboxOptions,
    private readonly hooks: SupervisorHooks,
  ) {
    this.limits = processLimits(options);
  }

  /** Isolate rebuilds in every sandbox process so far, plus the processes that replaced a dead one. */
  get rebuilds(): number {
    return this.retiredRebuilds + this.restarts + (this.current?.rebuilds ?? 0);
  }

  async start(): Promise<void> {
    const proc = await this.process();
    this.handlers = new Set(proc.handlers as HandlerName[]);
    this.loadLogs = proc.loadLogs;
  }

  async invoke(events: readonly SegmentEvent[], texts?: EventTexts): Promise<InvocationReport[]> {
    if (events.length === 0) return [];
    const first = await this.gate.shared(async () => (await this.process()).invoke(events, texts));
    const reports: (InvocationReport | undefined)[] = first.died ? [] : [...first.value];
    const suspects = events.map((_, i) => suspectOf(first, reports[i]));
    // An isolate killed while this call ran alone, with one event unfinished: that event is the cause.
    // (The dispatcher hands results back as they settle, so only the unfinished are in doubt.) A dead
    // process took every result of its call with it, and may have died of something else (memory grown
    // by earlier work): its events are rerun, alone, in a fresh process, even a single one.
    const doubtful = suspects.filter((x) => x !== undefined);
    if (doubtful.length === 0) return reports as InvocationReport[];
    if (doubtful.length === 1 && doubtful[0]!.kind === 'interrupted' && !first.crowded) {
      return events.map((_, i) => verdict(reports[i], suspects[i]));
    }
    for (let i = 0; i < events.length; i++) {
      if (!suspects[i]) continue;
      const rerun = await this.gate.exclusive(async () =>
        (await this.process()).invoke([events[i]!], texts && [texts[i]]),
      );
      reports[i] = verdict(
        rerun.died ? undefined : rerun.value[0],
        suspectOf(rerun, rerun.died ? undefined : rerun.value[0]),
      );
    }
    return reports as InvocationReport[];
  }

  async invokeBatch(events: readonly SegmentEvent[], texts?: EventTexts): Promise<BatchReport> {
    const first = await this.gate.shared(async () => (await this.process()).invokeBatch(events, texts));
    const report = first.died ? undefined : first.value;
    const suspect = suspectOf(first, report);
    if (!suspect) return report!;
    if (events.length <= 1 && suspect.kind === 'interrupted' && !first.crowded) {
      return batchVerdict(report, suspect, events.length);
    }
    // Quarantine: each event alone through onBatch, so the one that kills its sandbox is charged alone.
    const parts: BatchReport[] = [];
    for (const [i, event] of events.entries()) {
      const rerun = await this.gate.exclusive(async () =>
        (await this.process()).invokeBatch([event], texts && [texts[i]]),
      );
      const single = rerun.died ? undefined : rerun.value;
      parts.push(batchVerdict(single, suspectOf(rerun, single), 1));
    }
    const results = parts.map((p) => p.results[0] ?? p.outcome);
    const notTraced = parts.reduce((sum, p) => sum + (p.requestsNotTraced ?? 0), 0);
    return {
      outcome: summarize(results),
      results,
      logs: parts.flatMap((p) => p.logs),
      requests: parts.flatMap((p) => p.requests),
      ...(notTraced ? { requestsNotTraced: notTraced } : {}),
      durationMs: parts.reduce((sum, p) => sum + p.durationMs, 0),
    };
  }

  dispose(): void {
    this.disposed = true;
    this.current?.retire('was disposed');
    this.current = undefined;
  }

  /** The live sandbox process, started on first use and again after one ended. */
  private process(): Promise<SandboxProcess> {
    if (this.disposed) return Promise.reject(new Error('the function sandbox was disposed'));
    if (this.current?.alive) return Promise.resolve(this.current);
    this.starting ??= SandboxProcess.start(this.source, this.options, this.limits, (reason) =>
      this.ended(reason),
    )
      .then((proc) => {
        if (this.disposed) proc.kill('was disposed');
        else this.current = proc;
        return proc;
      })
      .finally(() => {
        this.starting = undefined;
      });
    return this.starting;
  }

  private ended(reason: string): void {
    const proc = this.current;
    if (!proc || proc.alive) return;
    this.current = undefined;
    this.retiredRebuilds += proc.rebuilds;
    if (this.disposed) return;
    this.restarts++;
    this.hooks.onProcessExit?.(reason);
  }
}

/** Why an event's result is in doubt: its process died, or its isolate was killed before it finished. */
function suspectOf(call: CallOutcome<unknown>, report: InvocationReport | undefined): Suspect | undefined {
  if (call.died) return { kind: 'died', reason: call.reason };
  if (!report) return { kind: 'died', reason: 'returned no report for the event' };
  return report.interrupted ? { kind: 'interrupted' } : undefined;
}

/**
 * The final report of an event that ran alone: its own, or, when its sandbox process died under it, a
 * `Crashed` outcome (the runner charges the crash; Timeout for an isolate killed for time or memory).
 */
function verdict(report: InvocationReport | undefined, suspect: Suspect | undefined): InvocationReport {
  if (suspect?.kind === 'died' || !report) {
    const why = suspect?.kind === 'died' ? suspect.reason : 'returned no report';
    return {
      outcome: failure('Crashed', `the sandbox process ${why} while the event ran alone in it`),
      logs: [],
      requests: [],
      durationMs: 0,
    };
  }
  const { interrupted: _, ...settled } = report;
  return settled;
}

function batchVerdict(
  report: BatchReport | undefined,
  suspect: Suspect | undefined,
  count: number,
): BatchReport {
  const single = verdict(report, suspect);
  const results = report && suspect?.kind !== 'died' ? report.results : Array(count).fill(single.outcome);
  return { ...single, results };
}
