// Turns an invocation's outcome into JetStream's answer: ack, nak(delay) from the retry schedule, dead letter
// then term, or term with a delivery record. Attempts are counted by NATS (deliveryCount), never in memory.

import type { JetStreamClient, JsMsg } from 'nats';
import type { SegmentEvent } from '../api/events.js';
import type { Disposition, Topology } from '../api/jetstream.js';
import { type ErrorType, failure, type Outcome } from '../api/outcome.js';
import type { Logger } from '../lib/log.js';
import type { RequestTrace } from '../sandbox/index.js';
import { buildDeadLetter, nanosToIso, publishDeadLetter } from './dead-letters.js';
import type { DeliveryRecorder, RecordIdentity } from './delivery-records.js';
import type { HeldEvent, InFlight } from './in-flight.js';
import type { RetrySchedule } from './retry-schedule.js';
import type { Stats } from './stats.js';

/** What an attempt left behind, for its delivery record. */
export interface AttemptReport {
  logs: readonly string[];
  requests: readonly RequestTrace[];
  durationMs: number;
  /** Whether the attempt was an onBatch call. */
  batch: boolean;
}

/** For an event no handler ran for (not an event, or the sandbox failed): nothing to report. */
/** When a dead letter could not be published, the event comes back this soon to try again. */
const DEAD_LETTER_RETRY_DELAY_MS = 10_000;

export const NO_REPORT: AttemptReport = { logs: [], requests: [], durationMs: 0, batch: false };

export interface OutcomeHandlerDeps {
  js: JetStreamClient;
  topology: Topology;
  identity: RecordIdentity;
  schedule: RetrySchedule;
  stats: Stats;
  inFlight: InFlight;
  records: DeliveryRecorder;
  log: Logger;
}

/** An ack/nak/term on a closed connection throws; the message then simply comes back later. */
function answer(msg: JsMsg, fn: (msg: JsMsg) => void, log: Logger): void {
  try {
    fn(msg);
  } catch (err) {
    log.warn('could not answer JetStream; the message will be redelivered', { seq: msg.seq, error: err });
  }
}

export class OutcomeHandler {
  constructor(private readonly deps: OutcomeHandlerDeps) {}

  settle(held: HeldEvent, outcome: Outcome, report: AttemptReport): void {
    if (held.settled) return; // handed back at shutdown while it ran; NATS will redeliver it
    if (outcome.outcome === 'success') {
      answer(held.msg, (m) => m.ack(), this.deps.log);
      if (this.deps.inFlight.settle(held)) this.deps.stats.counters.delivered++;
      return;
    }
    if (outcome.outcome === 'discard') {
      this.discard(held.msg, held.event, outcome.errorType, outcome.message, report);
      this.deps.inFlight.settle(held);
      return;
    }
    const attempt = held.msg.info.deliveryCount;
    if (this.deps.schedule.hasAttemptAfter(attempt)) {
      this.retry(held, outcome.errorType, outcome.message, report, attempt);
    } else {
      void this.deadLetter(held, outcome.errorType, outcome.message, report, attempt);
    }
  }

  /** Stopped by filters or integrations: acknowledged, so it is not redelivered, and counted. */
  filtered(msg: JsMsg): void {
    answer(msg, (m) => m.ack(), this.deps.log);
    this.deps.stats.counters.filtered++;
  }

  /** A payload that is not an event can never succeed: discard it with a record saying why. */
  rejected(msg: JsMsg, message: string): void {
    const event: SegmentEvent = { type: 'unknown' };
    this.discard(msg, event, 'MessageRejected', message, NO_REPORT);
  }

  /** Shutdown: hand an unfinished event back to NATS for another replica (or this one, restarted). */
  release(held: HeldEvent): void {
    if (held.settled) return;
    answer(held.msg, (m) => m.nak(), this.deps.log);
    if (this.deps.inFlight.settle(held)) this.deps.stats.counters.released++;
  }

  private discard(
    msg: JsMsg,
    event: SegmentEvent,
    errorType: ErrorType,
    message: string,
    report: AttemptReport,
  ) {
    answer(msg, (m) => m.term(`${errorType}: ${message}`.slice(0, 256)), this.deps.log);
    this.deps.stats.discarded(errorType);
    this.record(msg, event, 'discard', errorType, message, report);
  }

  private retry(
    held: HeldEvent,
    errorType: ErrorType,
    message: string,
    report: AttemptReport,
    attempt: number,
    delay = this.deps.schedule.delayAfter(attempt),
  ) {
    if (held.settled) return;
    answer(held.msg, (m) => m.nak(delay), this.deps.log);
    if (!this.deps.inFlight.settle(held)) return;
    this.deps.stats.counters.retried++;
    this.record(
      held.msg,
      held.event,
      'retry',
      errorType,
      message,
      report,
      new Date(Date.now() + delay).toISOString(),
    );
  }

  private async deadLetter(
    held: HeldEvent,
    errorType: ErrorType,
    message: string,
    report: AttemptReport,
    attempt: number,
  ): Promise<void> {
    const { js, topology, identity, log } = this.deps;
    try {
      await publishDeadLetter(
        js,
        topology,
        buildDeadLetter({ ...identity, msg: held.msg, lastError: { errorType, message } }),
      );
    } catch (err) {
      // Never term what is not safely dead-lettered: hand it back soon (not after the schedule's longest
      // delay) and dead-letter it on its next attempt; if the publish did land, its message id dedupes it.
      log.error('could not publish a dead letter; the event will be attempted again', {
        seq: held.msg.seq,
        error: err,
      });
      this.retry(held, errorType, message, report, attempt, DEAD_LETTER_RETRY_DELAY_MS);
      return;
    }
    if (held.settled) return;
    answer(held.msg, (m) => m.term(`dead-lettered after ${attempt} attempts`), log);
    if (!this.deps.inFlight.settle(held)) return;
    this.deps.stats.counters.deadLettered++;
    this.record(held.msg, held.event, 'dead-letter', errorType, message, report);
  }

  private record(
    msg: JsMsg,
    event: SegmentEvent,
    disposition: Disposition,
    errorType: ErrorType,
    message: string,
    report: AttemptReport,
    nextAttemptAt?: string,
  ): void {
    this.deps.records.record({
      event,
      disposition,
      errorType,
      message,
      attempt: msg.info.deliveryCount,
      maxAttempts: this.deps.schedule.maxAttempts,
      ...(nextAttemptAt ? { nextAttemptAt } : {}),
      batch: report.batch,
      logs: [...report.logs],
      requests: report.requests,
      durationMs: report.durationMs,
      publishedAt: nanosToIso(msg.info.timestampNanos),
    });
  }
}

/** The outcome given to events whose invocation failed inside the runner itself: retried, never lost. */
export function sandboxFailure(err: unknown): Outcome {
  return failure(
    'Retry',
    `the function could not be invoked: ${err instanceof Error ? err.message : String(err)}`,
  );
}
