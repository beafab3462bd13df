// The JetStream topology: stream names, subjects, and the per-instance consumer, defined once.
// The gateway publishes to it, runners consume from it, the operator owns its lifecycle.

import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamManager,
  NatsError,
  nanos,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from 'nats';
import { EVENT_TYPES, type EventType, type SegmentEvent } from './events.js';
import type { ErrorType } from './outcome.js';

export const DEFAULT_PREFIX = 'dfn';
/** Where every dfn process looks for NATS unless told otherwise (a local nats-server). */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

export interface Topology {
  /** Subject prefix, also the stem of stream names: lets several installs share one NATS. */
  prefix: string;
  eventsStream: string;
  deadLetterStream: string;
  deliveriesStream: string;
}

export function topology(prefix: string = DEFAULT_PREFIX): Topology {
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) {
    throw new Error(`invalid JetStream prefix "${prefix}": use letters, digits, '-' and '_'`);
  }
  const stem = prefix.toUpperCase().replace(/-/g, '_');
  return {
    prefix,
    eventsStream: `${stem}_EVENTS`,
    deadLetterStream: `${stem}_DLQ`,
    deliveriesStream: `${stem}_DELIVERIES`,
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
export const deliveriesSubject = (t: Topology, ref: InstanceRef) =>
  `${t.prefix}.deliveries.${instanceTokens(ref)}`;
/** Runner stats are core NATS (not stored): the operator only needs the latest counters. */
export const statsSubject = (t: Topology, ref: InstanceRef) => `${t.prefix}.stats.${instanceTokens(ref)}`;
export const statsWildcard = (t: Topology) => `${t.prefix}.stats.>`;

/** Durable consumer name of a FunctionInstance; consumer names may not contain '.'. */
export function consumerName(ref: InstanceRef): string {
  return `fi_${subjectToken(ref.namespace)}__${subjectToken(ref.name)}`;
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
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  eventsMaxAgeMs: 7 * 24 * 3600_000,
  eventsMaxBytes: -1,
  duplicateWindowMs: 3600_000,
  deadLetterMaxAgeMs: 14 * 24 * 3600_000,
  deliveryRecordsPerInstance: 200,
  storage: 'file',
};

/** How long a dead letter's message id is remembered, so one event is never dead-lettered twice. */
export const DEAD_LETTER_DEDUPE_WINDOW_MS = 24 * 3600_000;

export function streamConfigs(t: Topology, limits: Partial<StreamLimits> = {}): Partial<StreamConfig>[] {
  const l = { ...DEFAULT_STREAM_LIMITS, ...limits };
  const storage = l.storage === 'memory' ? StorageType.Memory : StorageType.File;
  return [
    {
      name: t.eventsStream,
      description: 'Segment events accepted by the gateway, awaiting delivery',
      subjects: [`${t.prefix}.events.>`, `${t.prefix}.replay.>`],
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      max_age: nanos(l.eventsMaxAgeMs),
      max_bytes: l.eventsMaxBytes,
      duplicate_window: nanos(l.duplicateWindowMs),
      storage,
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
    },
    {
      name: t.deliveriesStream,
      description: 'Recent failed-delivery records per instance (bounded per subject)',
      subjects: [`${t.prefix}.deliveries.>`],
      retention: RetentionPolicy.Limits,
      max_msgs_per_subject: l.deliveryRecordsPerInstance,
      storage,
    },
  ];
}

const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;

function isApiError(err: unknown, errCode: number): boolean {
  return err instanceof NatsError && err.api_error?.err_code === errCode;
}

/** Creates the three streams, or brings their config up to date. Idempotent. */
export async function ensureStreams(
  jsm: JetStreamManager,
  t: Topology,
  limits: Partial<StreamLimits> = {},
): Promise<void> {
  for (const cfg of streamConfigs(t, limits)) {
    try {
      await jsm.streams.info(cfg.name!);
      await jsm.streams.update(cfg.name!, cfg);
    } catch (err) {
      if (!isApiError(err, STREAM_NOT_FOUND)) throw err;
      await jsm.streams.add(cfg);
    }
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

/** Subjects an instance consumes: its source's events (or the listed types) and its own replays. */
export function instanceSubjects(t: Topology, spec: InstanceConsumerSpec): string[] {
  return [...sourceSubjects(t, spec.source, spec.eventTypes), replaySubject(t, spec)];
}

export function instanceConsumerConfig(t: Topology, spec: InstanceConsumerSpec): Partial<ConsumerConfig> {
  return {
    durable_name: consumerName(spec),
    description: `FunctionInstance ${spec.namespace}/${spec.name} (source ${spec.source})`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.New,
    // The runner counts attempts with the message's delivery count and dead-letters itself.
    max_deliver: -1,
    ack_wait: nanos(spec.ackWaitMs ?? DEFAULT_ACK_WAIT_MS),
    max_ack_pending: spec.maxAckPending ?? DEFAULT_MAX_ACK_PENDING,
    // Never a single filter_subject: the replay subject always joins the source's.
    filter_subjects: instanceSubjects(t, spec),
  };
}

/** Creates or updates an instance's durable consumer. Idempotent. */
export async function ensureInstanceConsumer(
  jsm: JetStreamManager,
  t: Topology,
  spec: InstanceConsumerSpec,
): Promise<ConsumerInfo> {
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

/** Removes an instance's consumer (finalizer path). Missing is fine. */
export async function deleteInstanceConsumer(jsm: JetStreamManager, t: Topology, ref: InstanceRef) {
  try {
    await jsm.consumers.delete(t.eventsStream, consumerName(ref));
  } catch (err) {
    if (!isApiError(err, CONSUMER_NOT_FOUND)) throw err;
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

/** One failed delivery attempt, kept (bounded per instance) on deliveriesSubject for `dfn deliveries`. */
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
  /** This attempt's number, from the message's delivery count. */
  attempt: number;
  maxAttempts: number;
  /** When the next attempt is due (retry only), ISO 8601. */
  nextAttemptAt?: string;
  /** Whether the attempt was an onBatch call. */
  batch: boolean;
  logs: string[];
  requests: RequestRecord[];
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
  /** Subject and sequence it had in the events stream. */
  subject: string;
  streamSequence: number;
  lastError: { errorType: ErrorType; message: string };
  attempts: number;
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
  /** Handler calls: one per single-event invocation, one per onBatch call. */
  invocations: number;
  /** Time spent in handlers (ms). */
  executionMs: number;
}

/** Published on statsSubject every few seconds and at shutdown. */
export interface RunnerStats {
  instance: InstanceRef;
  replica: string;
  revision: string;
  startedAt: string;
  at: string;
  /** Events held right now (running or waiting in a batch). */
  inFlight: number;
  counters: RunnerCounters;
}
