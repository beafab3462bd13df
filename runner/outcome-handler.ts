// Turns an invocation's outcome into JetStream's answer: ack; a copy for the next attempt (a message schedule)
// then ack; a dead letter then term; or term with a delivery record. Also crashes: re-enqueue or dead-letter.
// Attempts and crashes travel with the event (api/jetstream.ts), never in this process's memory.

import type { JetStreamClient, JsMsg } from 'nats';
import type { SegmentEvent } from '../api/events.js';
import { type DeliveryHistory, type Disposition, MAX_CRASHES, type Topology } from '../api/jetstream.js';
import { type ErrorType, failure, type Outcome } from '../api/outcome.js';
import type { Logger } from '../lib/telemetry.js';
import type { RequestTrace } from '../sandbox/index.js';
import { buildDeadLetter, nanosToIso, publishDeadLetter } from './dead-letters.js';
import type { DeliveryRecorder, RecordIdentity } from './delivery-records.js';
import type { HeldEvent, InFlight } from './in-flight.js';
import type { Requeuer } from './requeue.js';
import type { RetrySchedule } from './retry-schedule.js';
import type { Stats } from './stats.js';

/** What an attempt left behind, for its delivery record. */
export interface AttemptReport {
  logs: readonly string[];
  requests: readonly RequestTrace[];
  /** Requests made past the traced ones. */
  requestsNotTraced?: number;
  durationMs: number;
  /** Whether the attempt was an onBatch call. */
  batch: boolean;
}

/** For an event no handler ran for (not an event, or the sandbox failed): nothing to report. */
export const NO_REPORT: AttemptReport = { logs: [], requests: [], durationMs: 0, batch: false };

/** When a dead letter could not be published, the event comes back this soon to try again. */
const DEAD_LETTER_RETRY_DELAY_MS = 10_000;

export interface OutcomeHandlerDeps {
  js: JetStreamClient;
  topology: Topology;
  identity: RecordIdentity;
  schedule: RetrySchedule;
  stats: Stats;
  inFlight: InFlight;
  records: DeliveryRecorder;
  requeue: Requeuer;
  log: Logger;
}

/** An ack/nak/term on a closed connection throws; the message then simply comes back later. */
function answer(msg: JsMsg, fn: (msg: JsMsg) => void, log: Logger): void {
  try {
    fn(msg);
  } catch (err) {
    log.warn({ seq: msg.seq, error: err }, 'could not answer JetStream; the message will be redelivered');
  }
}

export class OutcomeHandler {
  /** Outcomes being carried out (copies and dead letters being published), for shutdown to wait on. */
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly deps: OutcomeHandlerDeps) {}

  settle(held: HeldEvent, outcome: Outcome, report: AttemptReport): void {
    // Settled: handed back at shutdown while it ran (NATS has it again). Answering: an outcome is under way.
    if (held.settled || held.answering) return;
    if (outcome.outcome === 'success') {
      answer(held.msg, (m) => m.ack(), this.deps.log);
      if (this.deps.inFlight.settle(held)) this.deps.stats.counters.delivered++;
      return;
    }
    if (outcome.outcome === 'discard') {
      this.discard(held.msg, held.event, held.history, outcome.errorType, outcome.message, report);
      this.deps.inFlight.settle(held);
      return;
    }
    if (outcome.errorType === 'Crashed') {
      void this.crashed(held, outcome.message, report);
      return;
    }
    const next: DeliveryHistory = { attempt: held.history.attempt + 1, crashes: held.history.crashes };
    if (this.deps.schedule.hasAttemptAfter(held.history.attempt)) {
      this.track(this.retry(held, outcome.errorType, outcome.message, report, next));
    } else {
      this.track(this.deadLetter(held, outcome.errorType, outcome.message, report, held.history));
    }
  }

  /**
   * Charges one crash to a held event: its sandbox died (or was killed) while the event was in flight and
   * the event is to blame. With crashes left, a copy with `Dfn-Crashes` + 1 and the same attempt is
   * published for delivery at once (no attempt is used up), then the original is acked; the crash that
   * reaches MAX_CRASHES dead-letters it as `Crashed` instead. Never rejects; resolves once NATS has the answer.
   * A no-op for an event already settled or whose outcome is already being carried out.
   */
  crashed(held: HeldEvent, message: string, report: AttemptReport = NO_REPORT): Promise<void> {
    if (held.settled || held.answering) return Promise.resolve();
    const history: DeliveryHistory = { attempt: held.history.attempt, crashes: held.history.crashes + 1 };
    if (history.crashes >= MAX_CRASHES) {
      return this.track(this.deadLetter(held, 'Crashed', crashMessage(history, message), report, history));
    }
    return this.track(
      (async () => {
        if (!(await this.handOn(held, () => this.deps.requeue.now(held.msg, history), 0))) return;
        this.deps.stats.counters.retried++;
        this.record(held, history, 'retry', 'Crashed', message, report, new Date().toISOString());
      })(),
    );
  }

  /** At receipt: an event that already crashed MAX_CRASHES times is dead-lettered without running again. */
  crashLimitReached(held: HeldEvent): void {
    const message = crashMessage(
      held.history,
      'redelivered after its runner died, stopped or could not answer',
    );
    this.track(this.deadLetter(held, 'Crashed', message, NO_REPORT, held.history));
  }

  /** Stopped by filters or integrations: acknowledged, so it is not redelivered, and counted. */
  filtered(msg: JsMsg): void {
    answer(msg, (m) => m.ack(), this.deps.log);
    this.deps.stats.counters.filtered++;
  }

  /** A payload that is not an event can never succeed: discard it with a record saying why. */
  rejected(msg: JsMsg, message: string): void {
    const event: SegmentEvent = { type: 'unknown' };
    this.discard(msg, event, { attempt: 1, crashes: 0 }, 'MessageRejected', message, NO_REPORT);
  }

  /**
   * Shutdown: hands an unfinished event back for another replica (or this one, restarted). A copy with the
   * same history is published, so the hand-back costs the event nothing; `charge` adds a crash (the event
   * overran every deadline the sandbox has, so it may be what keeps the runner from stopping). If the copy
   * cannot be published, a nak: NATS redelivers at once and counts the redelivery as a crash.
   */
  release(held: HeldEvent, charge: boolean): Promise<void> {
    if (held.settled || held.answering) return Promise.resolve();
    const history: DeliveryHistory = {
      attempt: held.history.attempt,
      crashes: held.history.crashes + (charge ? 1 : 0),
    };
    return this.track(
      (async () => {
        held.answering = true;
        let copied = true;
        try {
          await this.deps.requeue.now(held.msg, history);
        } catch (err) {
          copied = false;
          this.deps.log.warn(
            {
              seq: held.msg.seq,
              error: err,
            },
            'could not hand an event back as a copy; handing the message back',
          );
        }
        answer(held.msg, (m) => (copied ? m.ack() : m.nak()), this.deps.log);
        if (this.deps.inFlight.settle(held)) this.deps.stats.counters.released++;
      })(),
    );
  }

  /** Waits for outcomes still being carried out (shutdown), at most `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.pending]),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private track(p: Promise<void>): Promise<void> {
    const tracked = p
      .catch((err) => this.deps.log.error({ error: err }, 'an outcome could not be carried out'))
      .finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
    return tracked;
  }

  /**
   * Publishes what replaces the message (a copy), then acks it; when the publish fails, a nak after
   * `fallbackDelayMs` instead, so the event is never lost (NATS then counts a redelivery). False if the
   * event was already settled.
   */
  private async handOn(
    held: HeldEvent,
    publish: () => Promise<void>,
    fallbackDelayMs: number,
  ): Promise<boolean> {
    held.answering = true;
    try {
      await publish();
      answer(held.msg, (m) => m.ack(), this.deps.log);
    } catch (err) {
      this.deps.log.warn(
        {
          seq: held.msg.seq,
          error: err,
        },
        'could not re-enqueue an event; handing the message back to NATS instead',
      );
      answer(held.msg, (m) => m.nak(fallbackDelayMs), this.deps.log);
    }
    return this.deps.inFlight.settle(held);
  }

  private discard(
    msg: JsMsg,
    event: SegmentEvent,
    history: DeliveryHistory,
    errorType: ErrorType,
    message: string,
    report: AttemptReport,
  ) {
    answer(msg, (m) => m.term(`${errorType}: ${message}`.slice(0, 256)), this.deps.log);
    this.deps.stats.discarded(errorType);
    this.record({ msg, event }, history, 'discard', errorType, message, report);
  }

  private async retry(
    held: HeldEvent,
    errorType: ErrorType,
    message: string,
    report: AttemptReport,
    next: DeliveryHistory,
  ): Promise<void> {
    const delay = this.deps.schedule.delayAfter(held.history.attempt);
    const at = new Date(Date.now() + delay);
    if (!(await this.handOn(held, () => this.deps.requeue.schedule(held.msg, next, at), delay))) return;
    this.deps.stats.counters.retried++;
    this.record(held, held.history, 'retry', errorType, message, report, at.toISOString());
  }

  private async deadLetter(
    held: HeldEvent,
    errorType: ErrorType,
    message: string,
    report: AttemptReport,
    history: DeliveryHistory,
  ): Promise<void> {
    const { js, topology, identity, log } = this.deps;
    const { msg } = held;
    held.answering = true;
    try {
      await publishDeadLetter(
        js,
        topology,
        buildDeadLetter({
          ...identity,
          data: msg.data,
          subject: msg.subject,
          seq: msg.seq,
          publishedAt: nanosToIso(msg.info.timestampNanos),
          history,
          lastError: { errorType, message },
        }),
      );
    } catch (err) {
      // Never term what is not safely dead-lettered: hand it back soon (not after the schedule's longest
      // delay) and dead-letter it when it comes back; if the publish did land, its message id dedupes it.
      log.error(
        {
          seq: msg.seq,
          error: err,
        },
        'could not publish a dead letter; the event will be attempted again',
      );
      answer(msg, (m) => m.nak(DEAD_LETTER_RETRY_DELAY_MS), log);
      if (!this.deps.inFlight.settle(held)) return;
      this.deps.stats.counters.retried++;
      const nextAt = new Date(Date.now() + DEAD_LETTER_RETRY_DELAY_MS).toISOString();
      this.record(held, history, 'retry', errorType, message, report, nextAt);
      return;
    }
    answer(msg, (m) => m.term(`dead-lettered (${errorType}) at attempt ${history.attempt}`), log);
    if (!this.deps.inFlight.settle(held)) return;
    this.deps.stats.counters.deadLettered++;
    this.record(held, history, 'dead-letter', errorType, message, report);
  }

  private record(
    { msg, event }: { msg: JsMsg; event: SegmentEvent },
    history: DeliveryHistory,
    disposition: Disposition,
    errorType: ErrorType,
    message: string,
    report: AttemptReport,
    nextAttemptAt?: string,
  ): void {
    // Every failed attempt passes here, so here it becomes the replica's last error.
    this.deps.stats.failedAttempt(errorType, message);
    this.deps.records.record({
      event,
      disposition,
      errorType,
      message,
      attempt: history.attempt,
      maxAttempts: this.deps.schedule.maxAttempts,
      crashes: history.crashes,
      ...(nextAttemptAt ? { nextAttemptAt } : {}),
      batch: report.batch,
      logs: [...report.logs],
      requests: report.requests,
      ...(report.requestsNotTraced ? { requestsNotTraced: report.requestsNotTraced } : {}),
      durationMs: report.durationMs,
      publishedAt: nanosToIso(msg.info.timestampNanos),
    });
  }
}

function crashMessage(history: DeliveryHistory, last: string): string {
  return `crashed ${history.crashes} times (${MAX_CRASHES} allowed), last: ${last}`;
}

/** The outcome given to events whose invocation failed inside the runner itself: retried, never lost. */
export function sandboxFailure(err: unknown): Outcome {
  return failure(
    'Retry',
    `the function could not be invoked: ${err instanceof Error ? err.message : String(err)}`,
  );
}
