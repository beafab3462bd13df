// Carries held events into the sandbox: single-handler events in micro-batches (one boundary crossing for
// many events), onBatch events through the Batcher. Every event comes out with exactly one outcome.

import { type EventType, HANDLER_FOR_TYPE } from '../api/events.js';
import type { BatchingConfig } from '../api/runner-config.js';
import type { BatchReport, FunctionSandbox, InvocationReport } from '../sandbox/index.js';
import { Batcher } from './batcher.js';
import type { HeldEvent } from './in-flight.js';
import { type AttemptReport, NO_REPORT, type OutcomeHandler, sandboxFailure } from './outcome-handler.js';
import type { Stats } from './stats.js';

/**
 * Events per sandbox.invoke() call. A crossing costs ~120 µs whatever it carries, 100 events ~0.5 ms; past
 * a hundred or so the gain flattens while one slow event holds back more acks.
 */
export const MICRO_BATCH_SIZE = 128;

/**
 * How long an event may wait for others to share its sandbox call while earlier calls are still in the
 * sandbox. Events trickling in one per I/O turn (single-event requests at 1,000/s) would otherwise each
 * pay a whole call (an IPC message each way, the isolate crossing, the dispatcher), ~0.3 ms of CPU, and
 * the sandbox process falls behind long before its functions' work does. An idle sandbox gets the event
 * at once; a busy one could not have started it sooner anyway.
 */
export const MICRO_BATCH_LINGER_MS = 2;

export class Invoker {
  private queue: HeldEvent[] = [];
  private drainScheduled = false;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** The drain scheduled for an idle sandbox; cancelled with the linger when a full micro-batch goes first. */
  private idleDrain: NodeJS.Immediate | undefined;
  /** sandbox.invoke() calls not yet answered. */
  private callsInFlight = 0;
  private readonly batcher: Batcher<HeldEvent> | undefined;

  constructor(
    private readonly sandbox: FunctionSandbox,
    private readonly outcomes: OutcomeHandler,
    private readonly stats: Stats,
    batching: BatchingConfig,
  ) {
    if (batching.enabled && sandbox.handlers.has('onBatch')) {
      this.batcher = new Batcher(batching.maxSize, batching.maxWaitMs, (items) => this.flushBatch(items));
    }
  }

  /** Whether events go through onBatch. */
  get batching(): boolean {
    return this.batcher !== undefined;
  }

  submit(held: HeldEvent): void {
    if (this.batcher) this.batcher.add(held);
    else this.enqueue(held);
  }

  /** Shutdown: batches waiting for size or time go now, so they can finish within the grace period. */
  flushBatches(): void {
    this.batcher?.flush();
  }

  private enqueue(held: HeldEvent): void {
    this.queue.push(held);
    if (this.drainScheduled) {
      if (this.queue.length >= MICRO_BATCH_SIZE) this.drain();
      return;
    }
    this.drainScheduled = true;
    // Events received in the same I/O turn travel together; while the sandbox is busy, those of the next
    // couple of milliseconds too.
    if (this.callsInFlight === 0) this.idleDrain = setImmediate(this.drain);
    else this.lingerTimer = setTimeout(this.drain, MICRO_BATCH_LINGER_MS);
  }

  private readonly drain = (): void => {
    if (!this.drainScheduled) return;
    this.drainScheduled = false;
    // Left pending, an idle drain would take the next event at once, cutting its linger short.
    clearImmediate(this.idleDrain);
    this.idleDrain = undefined;
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    while (this.queue.length > 0) {
      const chunk =
        this.queue.length <= MICRO_BATCH_SIZE ? this.queue : this.queue.slice(0, MICRO_BATCH_SIZE);
      this.queue = chunk === this.queue ? [] : this.queue.slice(MICRO_BATCH_SIZE);
      void this.runSingle(chunk);
    }
  };

  private async runSingle(chunk: HeldEvent[]): Promise<void> {
    let reports: InvocationReport[] | undefined;
    let error: unknown;
    this.callsInFlight++;
    const handedOver = performance.now();
    try {
      reports = await this.sandbox.invoke(
        chunk.map((h) => h.event),
        chunk.map((h) => h.text),
      );
    } catch (err) {
      error = err;
    } finally {
      this.callsInFlight--;
    }
    this.stats.sandboxCall(chunk.length, performance.now() - handedOver);
    const counters = this.stats.counters;
    counters.invocations += chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      const report = reports?.[i];
      if (report) {
        this.stats.invoked(report.durationMs);
        this.outcomes.settle(chunk[i]!, report.outcome, attemptReport(report, false));
      } else {
        this.outcomes.settle(chunk[i]!, sandboxFailure(error ?? 'no report for the event'), NO_REPORT);
      }
    }
  }

  private flushBatch(items: HeldEvent[]): void {
    // A lone event at flush time is low volume: its single handler serves it, as in Segment.
    if (items.length === 1) {
      const handler = HANDLER_FOR_TYPE[items[0]!.event.type as EventType];
      if (handler && this.sandbox.handlers.has(handler)) {
        this.enqueue(items[0]!);
        return;
      }
    }
    void this.runBatch(items);
  }

  private async runBatch(items: HeldEvent[]): Promise<void> {
    let report: BatchReport | undefined;
    let error: unknown;
    const handedOver = performance.now();
    try {
      report = await this.sandbox.invokeBatch(
        items.map((h) => h.event),
        items.map((h) => h.text),
      );
    } catch (err) {
      error = err;
    }
    this.stats.sandboxCall(items.length, performance.now() - handedOver);
    this.stats.counters.invocations++;
    if (!report) {
      for (const held of items) this.outcomes.settle(held, sandboxFailure(error), NO_REPORT);
      return;
    }
    this.stats.invoked(report.durationMs);
    const attempt = attemptReport(report, true);
    // Partial results: each event gets its own outcome, so only the failed ones are retried.
    for (let i = 0; i < items.length; i++)
      this.outcomes.settle(items[i]!, report.results[i] ?? report.outcome, attempt);
  }
}

/** What a settled event's record says of the attempt: its logs and request traces, from the report. */
function attemptReport(report: InvocationReport, batch: boolean): AttemptReport {
  return {
    logs: report.logs,
    requests: report.requests,
    ...(report.requestsNotTraced ? { requestsNotTraced: report.requestsNotTraced } : {}),
    durationMs: report.durationMs,
    batch,
  };
}
