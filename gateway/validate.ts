// Segment's limits and field rules for the Tracking API: what makes an event or a batch acceptable.
// Pure checks with no I/O; each failure names a catalogue code so clients can tell reasons apart.

import { type EventType, isEventType } from '../api/events.js';
import type { GatewayErrorCode } from './errors.js';

/** Segment's documented limits (KB = 1024 bytes, as Segment's own libraries count them). */
export const LIMITS = {
  /** Bytes of one event as the client sent it (also the body limit of the single-event endpoints). */
  eventBytes: 32 * 1024,
  /** Bytes of a /v1/batch (or /v1/import) request body, after decompression. */
  batchBytes: 500 * 1024,
  /** Events in one batch. */
  batchEvents: 2500,
  /** Characters of a messageId: it becomes a NATS header value, so it must stay short and printable. */
  messageIdChars: 512,
} as const;

export interface Problem {
  code: GatewayErrorCode;
  detail?: string;
}

type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An identifier: Segment accepts strings and, from some libraries, numbers (stored as strings). */
function isId(value: unknown): boolean {
  return (
    (typeof value === 'string' && value.length > 0) || (typeof value === 'number' && Number.isFinite(value))
  );
}

function absent(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

// ISO-8601's four-digit years. Bounding every client time keeps the skew correction
// receivedAt − (sentAt − originalTimestamp) inside the range a Date can represent.
const EARLIEST = Date.parse('0000-01-01T00:00:00.000Z');
const LATEST = Date.parse('9999-12-31T23:59:59.999Z');

/** Parses a client timestamp; undefined when absent, NaN when present but not a date of years 0000–9999. */
export function parseTime(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') return Number.NaN;
  const time = Date.parse(value);
  return time >= EARLIEST && time <= LATEST ? time : Number.NaN;
}

/**
 * A client value as error messages quote it: short, and never by serializing it (a value nested
 * thousands deep would make JSON.stringify throw, turning a 400 into a 500).
 */
export function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return Array.isArray(value)
    ? 'an array'
    : `a${typeof value === 'object' ? 'n object' : ` ${typeof value}`}`;
}

const OBJECT_FIELDS = ['properties', 'traits', 'context', 'integrations'] as const;
const STRING_FIELDS = ['event', 'name', 'category'] as const;
const ID_FIELDS = ['userId', 'anonymousId', 'groupId', 'previousId'] as const;
const TIME_FIELDS = ['timestamp', 'originalTimestamp', 'sentAt'] as const;

/**
 * Checks one event against Segment's rules for its type. `type` is the route's type for the
 * single-event endpoints; in a batch it is the event's own "type" field (checked here).
 */
export function checkEvent(event: unknown, routeType?: EventType): Problem | undefined {
  if (!isObject(event)) return { code: 'GW_EVENT_NOT_OBJECT' };
  const type = routeType ?? event.type;
  if (!isEventType(type)) {
    return {
      code: 'GW_EVENT_TYPE_INVALID',
      detail: event.type === undefined ? '"type" is missing' : `got ${shown(event.type)}`,
    };
  }

  for (const f of ID_FIELDS) {
    const v = event[f];
    if (!absent(v) && !isId(v)) return { code: 'GW_FIELD_INVALID', detail: `"${f}" must be a string` };
  }
  for (const f of OBJECT_FIELDS) {
    const v = event[f];
    if (v !== undefined && v !== null && !isObject(v)) {
      return { code: 'GW_FIELD_INVALID', detail: `"${f}" must be an object` };
    }
  }
  for (const f of STRING_FIELDS) {
    const v = event[f];
    if (v !== undefined && v !== null && typeof v !== 'string') {
      return { code: 'GW_FIELD_INVALID', detail: `"${f}" must be a string` };
    }
  }
  for (const f of TIME_FIELDS) {
    if (Number.isNaN(parseTime(event[f]))) {
      return { code: 'GW_TIMESTAMP_INVALID', detail: `"${f}" is ${shown(event[f])}` };
    }
  }

  const messageId = event.messageId;
  if (messageId !== undefined && messageId !== null) {
    if (
      typeof messageId !== 'string' ||
      messageId.length === 0 ||
      messageId.length > LIMITS.messageIdChars ||
      CONTROL_CHARS.test(messageId) ||
      // nats.js trims header values: "m1 " would dedupe against "m1", and the later event be dropped.
      messageId !== messageId.trim()
    ) {
      return { code: 'GW_MESSAGE_ID_INVALID' };
    }
  }

  if (absent(event.userId) && absent(event.anonymousId)) return { code: 'GW_IDENTITY_MISSING' };
  switch (type) {
    case 'track':
      if (typeof event.event !== 'string' || event.event.length === 0)
        return { code: 'GW_TRACK_EVENT_MISSING' };
      break;
    case 'group':
      if (absent(event.groupId)) return { code: 'GW_GROUP_ID_MISSING' };
      break;
    case 'alias':
      if (absent(event.previousId)) return { code: 'GW_PREVIOUS_ID_MISSING' };
      break;
    default:
      break;
  }
  return undefined;
}

/** The batch envelope: fields that apply to every event of a /v1/batch request. */
export interface BatchEnvelope {
  batch: unknown[];
  context?: Json;
  integrations?: Json;
  /** Parsed `sentAt` of the request (ms since epoch). */
  sentAt?: number;
  /** Serialized bytes of `context` and `integrations`, which count toward every event's size. */
  sharedBytes: number;
}

/** Checks a /v1/batch body; problems here reject the whole request. */
export function checkBatchEnvelope(body: Json): BatchEnvelope | Problem {
  const batch = body.batch;
  if (!Array.isArray(batch)) {
    return { code: 'GW_BATCH_NOT_ARRAY', detail: batch === undefined ? '"batch" is missing' : undefined };
  }
  if (batch.length === 0) return { code: 'GW_BATCH_EMPTY' };
  if (batch.length > LIMITS.batchEvents) {
    return {
      code: 'GW_BATCH_TOO_MANY_EVENTS',
      detail: `${batch.length} events, at most ${LIMITS.batchEvents}`,
    };
  }
  for (const f of ['context', 'integrations'] as const) {
    const v = body[f];
    if (v !== undefined && v !== null && !isObject(v)) {
      return { code: 'GW_FIELD_INVALID', detail: `batch "${f}" must be an object` };
    }
  }
  const sentAt = parseTime(body.sentAt);
  if (Number.isNaN(sentAt)) {
    return { code: 'GW_TIMESTAMP_INVALID', detail: `batch "sentAt" is ${shown(body.sentAt)}` };
  }
  let sharedBytes = 0;
  try {
    for (const v of [body.context, body.integrations]) {
      if (isObject(v)) sharedBytes += Buffer.byteLength(JSON.stringify(v));
    }
  } catch (err) {
    if (err instanceof RangeError) {
      return { code: 'GW_EVENT_TOO_DEEP', detail: 'the batch "context" or "integrations"' };
    }
    throw err;
  }
  return {
    batch,
    ...(isObject(body.context) ? { context: body.context } : {}),
    ...(isObject(body.integrations) ? { integrations: body.integrations } : {}),
    ...(sentAt !== undefined ? { sentAt } : {}),
    sharedBytes,
  };
}
