// The JetStream topology: stream names, subjects, the per-instance consumers and the headers an event's copies
// carry, defined once. The gateway publishes to it, runners consume from it, the operator owns its lifecycle.

import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamManager,
  type JsMsg,
  type MsgHdrs,
  NatsError,
  nanos,
  headers as natsHeaders,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from 'nats';
import { z } from 'zod';
import { EVENT_TYPES, type EventType, type SegmentEvent } from './events.js';
import { ERROR_TYPES, type ErrorType } from './outcome.js';

export const DEFAULT_PREFIX = 'dfn';
/** Where every dfn process looks for NATS unless told otherwise (a local nats-server). */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

export interface Topology {
  /** Subject prefix, also the stem of stream names: lets several installs share one NATS. */
  prefix: string;
  eventsStream: string;
  /** Events waiting for a later attempt (message schedules), sourced back into the events stream when due. */
  retryStream: string;
  deadLetterStream: string;
  deliveriesStream: string;
  /** JetStream's max-deliveries advisories of the events stream's consumers, kept until a runner handles them. */
  advisoryStream: string;
}

export function topology(prefix: string = DEFAULT_PREFIX): Topology {
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) {
    throw new Error(`invalid JetStream prefix "${prefix}": use letters, digits, '-' and '_'`);
  }
  const stem = prefix.toUpperCase().replace(/-/g, '_');
  return {
    prefix,
    eventsStream: `${stem}_EVENTS`,
    retryStream: `${stem}_RETRIES`,
    deadLetterStream: `${stem}_DLQ`,
    deliveriesStream: `${stem}_DELIVERIES`,
    advisoryStream: `${stem}_ADVISORIES`,
  };
}

/**
 * A subject token from a Kubernetes or source name. Kubernetes names may contain '.', which is NATS's
 * token separator; '_' is not allowed in Kubernetes names, so mapping '.' to '_' cannot collide.
 */
export function subjectToken(name: string): string {
  const token = name.replace(/\./g, '_');
  if (!/^[A-Za-z0-9_-]+$/.test(token)) {
    throw new Error(`"${name}" cannot be used in a NATS subject: use letters, digits, '-', '_' and '.'`);
  }
  return token;
}

export function eventSubject(t: Topology, source: string, type: EventType): string {
  return `${t.prefix}.events.${subjectToken(source)}.${type}`;
}

/** Subjects of a source's events: all of them, or only the listed types (server-side filter). */
export function sourceSubjects(t: Topology, source: string, types?: readonly EventType[]): string[] {
  if (!types || types.length === 0 || types.length === EVENT_TYPES.length) {
    return [`${t.prefix}.events.${subjectToken(source)}.*`];
  }
  return [...new Set(types)].map((type) => eventSubject(t, source, type));
}

export interface InstanceRef {
  namespace: string;
  name: string;
}

function instanceTokens(ref: InstanceRef): string {
  return `${subjectToken(ref.namespace)}.${subjectToken(ref.name)}`;
}

export const deadLetterSubject = (t: Topology, ref: InstanceRef) => `${t.prefix}.dlq.${instanceTokens(ref)}`;
/**
 * Replayed dead letters go to the events stream under a per-instance subject, so only the instance that
 * dead-lettered them receives them again (re-publishing under the source would reach every instance).
 */
export const replaySubject = (t: Topology, ref: InstanceRef) => `${t.prefix}.replay.${instanceTokens(ref)}`;
/**
 * Where an instance's re-enqueued copies land (a retry schedule that fired, a crash or shutdown hand-back):
 * a subject of the retry stream, which the events stream sources, so the instance consumer receives them.
 */
export const retrySubject = (t: Topology, ref: InstanceRef) => `${t.prefix}.retry.${instanceTokens(ref)}`;
/**
 * The schedule of one pending retry. JetStream keeps one schedule per subject, so each copy gets its own,
 * named for the events-stream sequence of the copy it follows: publishing it twice replaces, never adds.
 */
export const retryScheduleSubject = (t: Topology, ref: InstanceRef, afterSeq: number) =>
  `${t.prefix}.sched.${instanceTokens(ref)}.${afterSeq}`;
/** Every pending retry schedule of an instance: how many there are is its `retrying` count. */
export const retrySchedulesWildcard = (t: Topology, ref: InstanceRef) =>
  `${t.prefix}.sched.${instanceTokens(ref)}.>`;
export const deliveriesSubject = (t: Topology, ref: InstanceRef) =>
  `${t.prefix}.deliveries.${instanceTokens(ref)}`;
/** Runner stats are core NATS (not stored): the operator only needs the latest counters. */
export const statsSubject = (t: Topology, ref: InstanceRef) => `${t.prefix}.stats.${instanceTokens(ref)}`;
export const statsWildcard = (t: Topology) => `${t.prefix}.stats.>`;

/** Durable consumer name of a FunctionInstance; consumer names may not contain '.'. */
export function consumerName(ref: InstanceRef): string {
  return `fi_${subjectToken(ref.namespace)}__${subjectToken(ref.name)}`;
}

/** Subject of JetStream's advisory that a message of `stream` reached `consumer`'s max_deliver. */
export const maxDeliveriesAdvisorySubject = (stream: string, consumer: string) =>
  `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${consumer}`;

/** The body of that advisory (the fields dfn reads). */
export interface MaxDeliveriesAdvisory {
  stream: string;
  consumer: string;
  stream_seq: number;
  deliveries: number;
}

// ---- An event's history, carried on each re-enqueued copy ---------------------------------------------

/** The delivery attempt a copy is (1 when absent). Set on every retry copy; a replay starts again at 1. */
export const ATTEMPT_HEADER = 'Dfn-Attempt';
/** Crashes charged to the event before this copy was published (0 when absent). */
export const CRASHES_HEADER = 'Dfn-Crashes';

/**
 * Crashes an event may cause: sandbox deaths it was found guilty of, and redeliveries after the runner
 * died or handed it back. The one that reaches this count dead-letters it as `Crashed`.
 */
export const MAX_CRASHES = 3;
/**
 * The instance consumer's max_deliver: only a backstop. The runner dead-letters an event by its
 * (MAX_CRASHES + 1)th delivery; the rest leave room for dead-letter publishes that failed. An event that
 * still reaches it is dead-lettered from JetStream's advisory (the advisory stream keeps it for a runner).
 */
export const MAX_DELIVER = MAX_CRASHES + 5;

export interface DeliveryHistory {
  /** The attempt this is, 1-based. */
  attempt: number;
  /** Crashes charged to the event so far. */
  crashes: number;
}

function headerCount(h: MsgHdrs | undefined, name: string, min: number): number {
  const raw = h?.get(name) ?? '';
  // A malformed value (anyone can publish to the stream) counts as absent rather than failing the event.
  return /^\d{1,6}$/.test(raw) ? Math.max(min, Number(raw)) : min;
}

/** Whether a message of the events stream is one of the runner's own copies (it came through the retry stream). */
function isRetryCopy(t: Topology, subject: string): boolean {
  return subject.startsWith(t.prefix) && subject.startsWith('.retry.', t.prefix.length);
}

/**
 * An event's history from its copy's headers and NATS's delivery count of that copy: every delivery after
 * the first is a redelivery after the runner died, stopped or could not answer, so it counts as a crash.
 * Only the runner's own copies carry a history: an event anyone else published (the gateway, a replay, a
 * producer writing to the stream directly) starts at attempt 1 whatever Dfn- headers it came with, and
 * its headers are not even decoded (`headers` is called only for a copy: ~2 µs an event, most of it for
 * the gateway's Nats-Msg-Id).
 */
export function deliveryHistory(
  t: Topology,
  subject: string,
  headers: () => MsgHdrs | undefined,
  deliveryCount = 1,
): DeliveryHistory {
  const h = isRetryCopy(t, subject) ? headers() : undefined;
  return {
    attempt: headerCount(h, ATTEMPT_HEADER, 1),
    crashes: headerCount(h, CRASHES_HEADER, 0) + Math.max(0, deliveryCount - 1),
  };
}

/**
 * How many times JetStream has delivered `msg`, read from its reply subject: `$JS.ACK.<stream>.<consumer>.
 * <count>.<stream seq>.<consumer seq>.<time>.<pending>`, or with a domain and an account hash before the
 * stream (and a token after). nats.js's `msg.info` parses every token of it into an object, ~2.5 µs of the
 * runner's ~35 µs per batched event, for the one number the runner needs of each event; anything else
 * falls back to it.
 */
export function deliveryCountOf(msg: JsMsg): number {
  const reply = (msg as JsMsg & { reply?: string }).reply ?? '';
  const dots: number[] = [];
  for (let at = reply.indexOf('.'); at >= 0 && dots.length < 12; at = reply.indexOf('.', at + 1))
    dots.push(at);
  // 8 dots: the old form, the count is the 5th token; 10 or more: the new one, the count is the 7th.
  const countToken = dots.length === 8 ? 4 : dots.length >= 10 ? 6 : -1;
  if (countToken > 0 && reply.startsWith('$JS.ACK.')) {
    const count = Number(reply.slice(dots[countToken - 1]! + 1, dots[countToken]));
    if (Number.isSafeInteger(count) && count >= 1) return count;
  }
  return msg.info.deliveryCount;
}

/** Headers of a copy carrying `history`. */
export function historyHeaders(history: DeliveryHistory): MsgHdrs {
  const h = natsHeaders();
  h.set(ATTEMPT_HEADER, String(history.attempt));
  h.set(CRASHES_HEADER, String(history.crashes));
  return h;
}

export interface StreamLimits {
  /** How long events wait for delivery at most (ms). Default 7 days. */
  eventsMaxAgeMs: number;
  /** Bytes the events stream may hold; when full, publishes are refused (the gateway answers 429). */
  eventsMaxBytes: number;
  /** Window in which a resent messageId is dropped as a duplicate (ms). */
  duplicateWindowMs: number;
  /** Dead letters are kept this long (ms). Default 14 days. */
  deadLetterMaxAgeMs: number;
  /** Failed-delivery records kept per instance. */
  deliveryRecordsPerInstance: number;
  storage: 'file' | 'memory';
  /** Copies of each stream in a NATS cluster: 3 survives losing a server; a single server takes only 1. */
  replicas: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  eventsMaxAgeMs: 7 * 24 * 3600_000,
  eventsMaxBytes: -1,
  duplicateWindowMs: 3600_000,
  deadLetterMaxAgeMs: 14 * 24 * 3600_000,
  deliveryRecordsPerInstance: 200,
  storage: 'file',
  replicas: 1,
};

/** How long a dead letter's message id is remembered, so one event is never dead-lettered twice. */
export const DEAD_LETTER_DEDUPE_WINDOW_MS = 24 * 3600_000;

export function streamConfigs(t: Topology, limits: Partial<StreamLimits> = {}): Partial<StreamConfig>[] {
  const l = { ...DEFAULT_STREAM_LIMITS, ...limits };
  const storage = l.storage === 'memory' ? StorageType.Memory : StorageType.File;
  return [
    // First: the events stream sources it. Message schedules cannot live in the events stream, which must
    // refuse publishes when full (discard new) where schedules need discard old; this stream has no size
    // limit, so nothing is ever discarded from it, and a retry waits here without holding a consumer slot.
    {
      name: t.retryStream,
      description:
        'Events waiting for their next attempt (one message schedule each); due copies flow to the events stream',
      subjects: [`${t.prefix}.sched.>`, `${t.prefix}.retry.>`],
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: nanos(l.eventsMaxAgeMs),
      // A copy's id names the copy it follows: a runner that published it and then died does not add another.
      duplicate_window: nanos(l.duplicateWindowMs),
      allow_rollup_hdrs: true,
      allow_msg_schedules: true,
      storage,
      num_replicas: l.replicas,
    } as Partial<StreamConfig>, // the nats 2.x client's StreamConfig type has no allow_msg_schedules; the server reads it
    {
      name: t.eventsStream,
      description: 'Segment events accepted by the gateway, awaiting delivery',
      subjects: [`${t.prefix}.events.>`, `${t.prefix}.replay.>`],
      // Due retry copies come back here, so one consumer per instance sees new events and retries alike.
      // When this stream is full, sourcing waits and retries: nothing is dropped.
      sources: [{ name: t.retryStream, filter_subject: `${t.prefix}.retry.>` }],
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      max_age: nanos(l.eventsMaxAgeMs),
      max_bytes: l.eventsMaxBytes,
      duplicate_window: nanos(l.duplicateWindowMs),
      storage,
      num_replicas: l.replicas,
    },
    {
      name: t.deadLetterStream,
      description:
        'Events whose delivery attempts were exhausted, per instance; `dfn replay` re-publishes them',
      subjects: [`${t.prefix}.dlq.>`],
      retention: RetentionPolicy.Limits,
      max_age: nanos(l.deadLetterMaxAgeMs),
      // A dead letter's message id is fixed per event; the long window makes a second publish of it
      // (a runner killed between publish and term, or an ack lost in transit) a no-op.
      duplicate_window: nanos(Math.min(DEAD_LETTER_DEDUPE_WINDOW_MS, l.deadLetterMaxAgeMs)),
      storage,
      num_replicas: l.replicas,
    },
    {
      name: t.deliveriesStream,
      description: 'Recent failed-delivery records per instance (bounded per subject)',
      subjects: [`${t.prefix}.deliveries.>`],
      retention: RetentionPolicy.Limits,
      max_msgs_per_subject: l.deliveryRecordsPerInstance,
      storage,
      num_replicas: l.replicas,
    },
    {
      name: t.advisoryStream,
      description:
        'Max-deliveries advisories of the instance consumers, until a runner dead-letters the event',
      subjects: [maxDeliveriesAdvisorySubject(t.eventsStream, '*')],
      // Each instance's advisory consumer filters its own subject; a handled advisory is removed.
      retention: RetentionPolicy.Workqueue,
      max_age: nanos(l.eventsMaxAgeMs),
      storage,
      num_replicas: l.replicas,
    },
  ];
}

const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;

function isApiError(err: unknown, errCode: number): boolean {
  return err instanceof NatsError && err.api_error?.err_code === errCode;
}

/**
 * Creates the streams, or brings their config up to date: what their one owner (the operator) does, with
 * the limits it is configured with. Idempotent.
 */
export async function ensureStreams(
  jsm: JetStreamManager,
  t: Topology,
  limits: Partial<StreamLimits> = {},
): Promise<void> {
  for (const cfg of streamConfigs(t, limits)) {
    if (await streamExists(jsm, cfg.name!)) await jsm.streams.update(cfg.name!, cfg);
    else await jsm.streams.add(cfg);
  }
}

/**
 * Creates the streams that do not exist and leaves the others as they are; the names of those left. For
 * the gateway's and the runner's local-use switches (--create-streams, nats.ensureTopology): pointed at a
 * NATS whose streams the operator made (say three replicas, a month of events), they must not bring them
 * down to their own defaults (one replica, a week), which ensureStreams would.
 */
export async function createMissingStreams(
  jsm: JetStreamManager,
  t: Topology,
  limits: Partial<StreamLimits> = {},
): Promise<string[]> {
  const kept: string[] = [];
  for (const cfg of streamConfigs(t, limits)) {
    if (await streamExists(jsm, cfg.name!)) kept.push(cfg.name!);
    else
      await jsm.streams.add(cfg).catch(async (err) => {
        // Created meanwhile by another process: it is there, which is all this asked for.
        if (!(await streamExists(jsm, cfg.name!))) throw err;
        kept.push(cfg.name!);
      });
  }
  return kept;
}

async function streamExists(jsm: JetStreamManager, name: string): Promise<boolean> {
  try {
    await jsm.streams.info(name);
    return true;
  } catch (err) {
    if (isApiError(err, STREAM_NOT_FOUND)) return false;
    throw err;
  }
}

export interface InstanceConsumerSpec extends InstanceRef {
  source: string;
  /** Event types to deliver; all when empty. Filtered by the server, so other types never reach the runner. */
  eventTypes?: readonly EventType[];
  /** Upper bound on unacknowledged events across all replicas. */
  maxAckPending?: number;
  /** How long a runner may hold an event without ack/nak/working() before it is redelivered (ms). */
  ackWaitMs?: number;
}

export const DEFAULT_MAX_ACK_PENDING = 1000;
export const DEFAULT_ACK_WAIT_MS = 30_000;

/** Subjects an instance consumes: its source's events (or the listed types), its replays and retries. */
export function instanceSubjects(t: Topology, spec: InstanceConsumerSpec): string[] {
  return [...sourceSubjects(t, spec.source, spec.eventTypes), replaySubject(t, spec), retrySubject(t, spec)];
}

export function instanceConsumerConfig(t: Topology, spec: InstanceConsumerSpec): Partial<ConsumerConfig> {
  return {
    durable_name: consumerName(spec),
    description: `FunctionInstance ${spec.namespace}/${spec.name} (source ${spec.source})`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.New,
    // Attempts travel in a header; deliveries count crashes, which the runner bounds itself (MAX_CRASHES).
    max_deliver: MAX_DELIVER,
    ack_wait: nanos(spec.ackWaitMs ?? DEFAULT_ACK_WAIT_MS),
    max_ack_pending: spec.maxAckPending ?? DEFAULT_MAX_ACK_PENDING,
    // Never a single filter_subject: the replay and retry subjects always join the source's.
    filter_subjects: instanceSubjects(t, spec),
  };
}

/** The instance's consumer of its max-deliveries advisories (in the advisory stream, same durable name). */
export function instanceAdvisoryConsumerConfig(t: Topology, ref: InstanceRef): Partial<ConsumerConfig> {
  const name = consumerName(ref);
  return {
    durable_name: name,
    description: `Max-deliveries advisories of FunctionInstance ${ref.namespace}/${ref.name}`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(DEFAULT_ACK_WAIT_MS),
    max_deliver: -1,
    filter_subject: maxDeliveriesAdvisorySubject(t.eventsStream, name),
  };
}

/**
 * The instance's counter of waiting retries: a consumer of the retry stream filtering the instance's schedule
 * subjects, never pulled, so its `num_pending` is the number of schedules stored: events waiting for their
 * next attempt. The server keeps that count as schedules are stored and as they fire (and are removed).
 */
export function instanceRetryCountConsumerConfig(t: Topology, ref: InstanceRef): Partial<ConsumerConfig> {
  return {
    durable_name: consumerName(ref),
    description: `Counts the retries of FunctionInstance ${ref.namespace}/${ref.name} waiting (never pulled)`,
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
    filter_subject: retrySchedulesWildcard(t, ref),
  };
}

/** Adds a consumer whose config never changes, unless it exists. */
async function ensureFixedConsumer(jsm: JetStreamManager, stream: string, cfg: Partial<ConsumerConfig>) {
  try {
    await jsm.consumers.info(stream, cfg.durable_name!);
  } catch (err) {
    if (!isApiError(err, CONSUMER_NOT_FOUND)) throw err;
    await jsm.consumers.add(stream, cfg);
  }
}

/** Creates or updates an instance's durable consumers (events, advisories, retry count). Idempotent. */
export async function ensureInstanceConsumer(
  jsm: JetStreamManager,
  t: Topology,
  spec: InstanceConsumerSpec,
): Promise<ConsumerInfo> {
  await ensureFixedConsumer(jsm, t.advisoryStream, instanceAdvisoryConsumerConfig(t, spec));
  await ensureFixedConsumer(jsm, t.retryStream, instanceRetryCountConsumerConfig(t, spec));
  const cfg = instanceConsumerConfig(t, spec);
  try {
    const existing = await jsm.consumers.info(t.eventsStream, cfg.durable_name!);
    const { deliver_policy: _fixedAtCreation, ...updatable } = cfg;
    const filterChanged =
      (existing.config.filter_subject ?? '') !== (cfg.filter_subject ?? '') ||
      JSON.stringify(existing.config.filter_subjects ?? []) !== JSON.stringify(cfg.filter_subjects ?? []);
    if (!filterChanged) return await jsm.consumers.update(t.eventsStream, cfg.durable_name!, updatable);
    return await jsm.consumers.update(t.eventsStream, cfg.durable_name!, {
      ...updatable,
      filter_subject: cfg.filter_subject ?? '',
      filter_subjects: cfg.filter_subjects ?? [],
    });
  } catch (err) {
    if (!isApiError(err, CONSUMER_NOT_FOUND)) throw err;
    return await jsm.consumers.add(t.eventsStream, cfg);
  }
}

/** Removes an instance's consumers (finalizer path). Missing is fine. */
export async function deleteInstanceConsumer(jsm: JetStreamManager, t: Topology, ref: InstanceRef) {
  for (const stream of [t.eventsStream, t.advisoryStream, t.retryStream]) {
    try {
      await jsm.consumers.delete(stream, consumerName(ref));
    } catch (err) {
      if (!isApiError(err, CONSUMER_NOT_FOUND)) throw err;
    }
  }
}

// ---- Messages on the dead-letter, delivery-record and stats subjects ----------------------------------
// Written by the runner; read by `dfn deliveries`, `dfn replay` and the operator.

/** A request made by the function during a failed attempt (headers redacted). */
export interface RequestRecord {
  method: string;
  url: string;
  /** HTTP status, or 0 when no response came (refused, timed out). */
  status: number;
  durationMs: number;
  requestHeaders?: Record<string, string>;
  error?: string;
}

/** What the runner did with a failed attempt. */
export type Disposition = 'retry' | 'discard' | 'dead-letter';

/**
 * The most a delivery record's JSON may take (UTF-8 bytes), whatever the server would accept; a record
 * also stays within the server's max_payload (less room for headers). A record is read by a person: 256
 * KiB holds its error, a whole log (4 KiB per invocation by default) and a hundred ordinary request
 * traces. Past it a record is shrunk, never dropped (DeliveryRecord's `logsOmitted`, `requestsOmitted`).
 * More would cost where records add up: the stream keeps 200 per instance and `dfn deliveries` reads them
 * all (50 MiB at most per instance at this bound, 200 MiB at NATS's default max_payload of 1 MiB).
 */
export const DELIVERY_RECORD_MAX_BYTES = 256 * 1024;

/**
 * One failed delivery attempt, kept (bounded per instance) on deliveriesSubject for `dfn deliveries`. Its
 * JSON is at most DELIVERY_RECORD_MAX_BYTES (and the server's max_payload): a larger one is shrunk as the
 * runner writes it, keeping its identity, error type and message (cut, marked …, only if it alone would
 * not fit), then the first log lines and request traces that fit, and saying how many were left out.
 */
export interface DeliveryRecord {
  instance: InstanceRef;
  replica: string;
  revision: string;
  /** The event's messageId (null when the payload was not an event). */
  messageId: string | null;
  eventType: string;
  /** Track event name, page/screen name. */
  eventName?: string;
  disposition: Disposition;
  errorType: ErrorType;
  message: string;
  /** This attempt's number (the copy's Dfn-Attempt header). */
  attempt: number;
  maxAttempts: number;
  /** Crashes charged to the event so far (sandbox deaths and redeliveries), of MAX_CRASHES. */
  crashes?: number;
  /** When the next attempt is due (retry only), ISO 8601. */
  nextAttemptAt?: string;
  /** Whether the attempt was an onBatch call. */
  batch: boolean;
  logs: string[];
  /** Log lines of the attempt left out of this record (after `logs`) to keep it within its size; absent when none. */
  logsOmitted?: number;
  requests: RequestRecord[];
  /**
   * Requests the sandbox traced but left out of this record (after `requests`) to keep it within its size;
   * absent when none.
   */
  requestsOmitted?: number;
  /** Requests the attempt made past the traced ones (the sandbox's trace bounds); absent when none. */
  requestsNotTraced?: number;
  durationMs: number;
  /** When the event entered the stream, ISO 8601. */
  publishedAt: string;
  /** When the attempt ended, ISO 8601. */
  at: string;
}

/** An event whose attempts were exhausted, kept on deadLetterSubject until replayed or expired. */
export interface DeadLetter {
  instance: InstanceRef;
  replica: string;
  revision: string;
  /** The event as it was published, before data control. */
  event: SegmentEvent;
  /** Subject and sequence of the copy dead-lettered (`<prefix>.retry.<ns>.<name>` for a re-enqueued one). */
  subject: string;
  streamSequence: number;
  lastError: { errorType: ErrorType; message: string };
  /** The attempt it reached. */
  attempts: number;
  /** Crashes charged to it. */
  crashes?: number;
  publishedAt: string;
  deadLetteredAt: string;
}

/** Cumulative counters of one runner replica since it started. */
export interface RunnerCounters {
  /** Messages taken from the consumer (redeliveries included). */
  received: number;
  delivered: number;
  /** Stopped by destination filters or the event's `integrations`; acknowledged. */
  filtered: number;
  /** Failed attempts handed back for a later attempt. */
  retried: number;
  /** Discarded attempts, by error type. */
  discarded: Partial<Record<ErrorType, number>>;
  deadLettered: number;
  /** Handed back unprocessed at shutdown. */
  released: number;
  /**
   * Dead-lettered from JetStream's max-deliveries advisory: events this replica never received, so not
   * part of the sum of the others.
   */
  deadLetteredFromAdvisory: number;
  /** Handler calls: one per single-event invocation, one per onBatch call. */
  invocations: number;
  /** Time spent in handlers (ms). */
  executionMs: number;
}

/** Counters of a replica that has counted nothing yet, with `overrides` on top. */
export function runnerCounters(overrides: Partial<RunnerCounters> = {}): RunnerCounters {
  return {
    received: 0,
    delivered: 0,
    filtered: 0,
    retried: 0,
    discarded: {},
    deadLettered: 0,
    released: 0,
    deadLetteredFromAdvisory: 0,
    invocations: 0,
    executionMs: 0,
    ...overrides,
  };
}

/** A replica's most recent failed attempt: what the instance's `status.lastError` shows. */
export interface LastError {
  type: ErrorType;
  /** Sensitive setting values redacted, at most LAST_ERROR_MESSAGE_MAX characters. */
  message: string;
  /** When the attempt ended, ISO 8601. */
  time: string;
}

export const LAST_ERROR_MESSAGE_MAX = 512;

/** Published on statsSubject every few seconds and at shutdown. */
export interface RunnerStats {
  instance: InstanceRef;
  replica: string;
  revision: string;
  /** When this process started: a new value is a new process, whose counters began again at zero. */
  startedAt: string;
  at: string;
  /** Events held right now (running or waiting in a batch). */
  inFlight: number;
  counters: RunnerCounters;
  /** The most recent failed attempt of this process, if any. */
  lastError?: LastError;
}

const countSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const nameSchema = z.string().min(1).max(253);

/**
 * How a reader (the operator) parses a stats message: anyone allowed to publish on the stats subjects can
 * send one, so every number is a bounded non-negative integer and every string bounded. Unknown fields are
 * dropped and a lastError this reader cannot read is ignored (not the counters), so a newer runner's
 * message still counts.
 */
export const RunnerStatsSchema = z.object({
  instance: z.object({ namespace: nameSchema, name: nameSchema }),
  replica: nameSchema,
  revision: z.string().max(253),
  startedAt: z.iso.datetime(),
  at: z.iso.datetime(),
  inFlight: countSchema,
  counters: z.object({
    received: countSchema,
    delivered: countSchema,
    filtered: countSchema,
    retried: countSchema,
    // Any key: a discard of an error type this reader does not know is still a discard.
    discarded: z.record(z.string().max(64), countSchema),
    deadLettered: countSchema,
    released: countSchema,
    deadLetteredFromAdvisory: countSchema,
    invocations: countSchema,
    executionMs: z.number().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
  lastError: z
    .object({
      type: z.enum(Object.keys(ERROR_TYPES) as [ErrorType, ...ErrorType[]]),
      message: z.string().max(64 * 1024),
      time: z.iso.datetime(),
    })
    .optional()
    .catch(undefined),
});

/** A stats message as a reader has it after parsing (discards keyed by any error type name). */
export type RunnerStatsMessage = z.output<typeof RunnerStatsSchema>;

// What the runner writes must be what the reader accepts (checked by tsc).
true satisfies RunnerStats extends z.input<typeof RunnerStatsSchema> ? true : never;
