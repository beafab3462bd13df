// Publishing a request's accepted events to the events stream, all at once, and turning JetStream's
// answers into one verdict: every event acknowledged, or a retryable GatewayError (never a partial 200).

import type { EventType } from '../api/events.js';
import { eventSubject, subjectToken, type Topology } from '../api/jetstream.js';
import { GatewayError, type GatewayErrorCode } from './errors.js';
import type { PublishError } from './jetstream-publisher.js';
import type { GatewayMetrics } from './metrics.js';
import type { NatsLink } from './nats-link.js';

/** An accepted event ready to publish: its serialized form is exactly what runners will receive. */
export interface PreparedEvent {
  type: EventType;
  messageId: string;
  data: Uint8Array;
}

export interface PublishResult {
  /** Events JetStream had already stored under the same messageId (a client's retry). */
  duplicates: number;
}

// A UTF-16 code unit of a surrogate pair without its partner. Header values travel as UTF-8, where a
// lone surrogate has no encoding: TextEncoder writes U+FFFD, so "a\uD800" and "a\uDBFF" would collide.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * `Nats-Msg-Id` of an event. JetStream dedupes per stream, not per subject, so the id is scoped to the
 * source: two sources that happen to reuse a messageId (say "1" from curl) must not drop each other's
 * events. A resent event from the same source still carries the same id and is stored once.
 *
 * The mapping is injective, so different messageIds never dedupe against each other: a well-formed
 * id follows `<source>:` as it is; one with a lone surrogate follows `<source>!` as a JSON string
 * literal, which escapes the surrogate (`"a\ud800"`) and is ASCII where UTF-8 would be lossy. Source
 * tokens never contain ':' or '!', so the two forms cannot meet.
 */
export function eventMsgId(source: string, messageId: string): string {
  return msgIdOf(subjectToken(source), messageId);
}

function msgIdOf(sourceToken: string, messageId: string): string {
  return LONE_SURROGATE.test(messageId)
    ? `${sourceToken}!${JSON.stringify(messageId)}`
    : `${sourceToken}:${messageId}`;
}

// JetStream's "store failed" API error; its description says which limit was hit.
const STORE_FAILED = 10077;

/** Which catalogue error a failed JetStream publish becomes. */
export function classifyPublishError(err: unknown): GatewayErrorCode {
  const e = err as Partial<PublishError>;
  const apiCode = e.api_error?.err_code;
  if (apiCode === STORE_FAILED && /maximum|exceeded/i.test(e.api_error?.description ?? ''))
    return 'GW_STREAM_FULL';
  if (apiCode !== undefined) return e.api_error?.code === 503 ? 'GW_STREAM_UNAVAILABLE' : 'GW_PUBLISH_FAILED';
  switch (e.code) {
    case '503': // no responders: nothing listens on the subject, i.e. no stream (or JetStream is down)
      return 'GW_STREAM_UNAVAILABLE';
    case 'TIMEOUT':
      return 'GW_PUBLISH_TIMEOUT';
    case 'SHUTTING_DOWN':
      return 'GW_SHUTTING_DOWN';
    case 'CONNECTION_CLOSED':
    case 'CONNECTION_DRAINING':
    case 'DISCONNECT':
    case 'CONNECTION_REFUSED':
      return 'GW_NATS_UNAVAILABLE';
    default:
      return 'GW_PUBLISH_FAILED';
  }
}

// Lower rank wins when several events of one request fail differently: the most actionable reason.
const FAILURE_RANK: GatewayErrorCode[] = [
  'GW_STREAM_FULL',
  'GW_STREAM_UNAVAILABLE',
  'GW_NATS_UNAVAILABLE',
  'GW_PUBLISH_TIMEOUT',
  'GW_SHUTTING_DOWN',
  'GW_PUBLISH_FAILED',
];

export class EventPublisher {
  private inFlight = 0;
  private readonly subjects = new Map<string, string>();

  constructor(
    private readonly link: NatsLink,
    private readonly topology: Topology,
    private readonly metrics: GatewayMetrics,
  ) {}

  private subject(source: string, type: EventType): string {
    const key = `${source}\u0000${type}`;
    let subject = this.subjects.get(key);
    if (subject === undefined) {
      subject = eventSubject(this.topology, source, type);
      // Bounded by sources × 7 types; sources come from the write-keys file, not from clients.
      this.subjects.set(key, subject);
    }
    return subject;
  }

  /**
   * Publishes every event concurrently and waits for all acknowledgements: one round trip's latency
   * per request instead of one per event. Resolves only when JetStream stored (or deduplicated) all.
   * The caller has admitted the events into the in-flight budget (in-flight-budget.ts).
   */
  async publish(source: string, events: readonly PreparedEvent[]): Promise<PublishResult> {
    const js = this.link.publisher;
    if (!js) throw this.fail('GW_NATS_UNAVAILABLE', `NATS is ${this.link.state}`);

    const started = performance.now();
    this.inFlight += events.length;
    this.metrics.eventsInFlight.set(this.inFlight);
    const token = subjectToken(source);
    const acks = events.map((e) =>
      js.publish(this.subject(source, e.type), e.data, msgIdOf(token, e.messageId)),
    );
    // Wait for every answer, even after a failure, so in-flight accounting and metrics stay exact.
    const results = await Promise.allSettled(acks);
    this.inFlight -= events.length;
    this.metrics.eventsInFlight.set(this.inFlight);

    let duplicates = 0;
    let failure: { code: GatewayErrorCode; err: unknown; count: number } | undefined;
    for (const r of results) {
      if (r.status === 'fulfilled') {
        if (r.value.duplicate) duplicates++;
        continue;
      }
      const code = classifyPublishError(r.reason);
      if (!failure || FAILURE_RANK.indexOf(code) < FAILURE_RANK.indexOf(failure.code)) {
        failure = { code, err: r.reason, count: (failure?.count ?? 0) + 1 };
      } else {
        failure.count++;
      }
    }
    this.metrics.publishDuration.observe((performance.now() - started) / 1000);
    if (failure) {
      const reason = (failure.err as Error)?.message ?? String(failure.err);
      throw this.fail(
        failure.code,
        `${failure.count} of ${events.length} events not acknowledged (${reason}); resend them: ` +
          'events already stored are recognised by messageId',
      );
    }
    if (duplicates > 0) this.metrics.duplicates.inc({ source }, duplicates);
    return { duplicates };
  }

  private fail(code: GatewayErrorCode, detail: string): GatewayError {
    this.metrics.publishFailures.inc({ reason: code });
    return new GatewayError(code, detail);
  }
}
