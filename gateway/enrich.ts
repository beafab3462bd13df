// The fields Segment's servers add to an accepted event: messageId, receivedAt, the clock-skew-corrected
// timestamp, and the batch's context/integrations merged in. The result is what runners receive.

import { randomUUID } from 'node:crypto';
import type { EventType, SegmentEvent } from '../api/events.js';
import { isObject, parseTime } from './validate.js';

type Json = Record<string, unknown>;

export interface RequestDefaults {
  /** Batch-level context, merged under each event's own context. */
  context?: Json;
  /** Batch-level integrations, merged under each event's own integrations. */
  integrations?: Json;
  /** Batch-level sentAt (ms since epoch), used when an event has none of its own. */
  sentAt?: number;
}

/**
 * Deep-merges `defaults` under `own`: the event's values win, nested objects merge key by key.
 * Results are null-prototype objects so a "__proto__" key in client JSON stays plain data.
 */
export function mergeUnder(defaults: Json, own: unknown): Json {
  const out: Json = Object.assign(Object.create(null), defaults);
  if (!isObject(own)) return out;
  for (const key of Object.keys(own)) {
    const mine = own[key];
    const theirs = out[key];
    out[key] = isObject(mine) && isObject(theirs) ? mergeUnder(theirs, mine) : mine;
  }
  return out;
}

function toId(value: unknown): unknown {
  return typeof value === 'number' ? String(value) : value;
}

/**
 * Builds the published form of a checked event. The client's time becomes `originalTimestamp`; when the
 * client also said when it sent the request, `timestamp = receivedAt − (sentAt − originalTimestamp)`
 * cancels the client clock's skew, as Segment does.
 */
export function enrich(
  raw: Json,
  type: EventType,
  defaults: RequestDefaults,
  receivedAt: number,
): SegmentEvent {
  const event: SegmentEvent = { ...raw, type };
  // The write key authenticates the request; it must never travel on to functions or logs.
  delete event.writeKey;

  if (event.messageId === undefined || event.messageId === null) event.messageId = randomUUID();
  for (const f of ['userId', 'anonymousId', 'groupId', 'previousId'] as const) {
    if (typeof event[f] === 'number') event[f] = toId(event[f]) as string;
  }
  if (defaults.context) event.context = mergeUnder(defaults.context, event.context);
  if (defaults.integrations) event.integrations = mergeUnder(defaults.integrations, event.integrations);

  const original = parseTime(event.originalTimestamp ?? event.timestamp);
  const sentAt = parseTime(event.sentAt) ?? defaults.sentAt;
  if (original !== undefined && event.originalTimestamp === undefined)
    event.originalTimestamp = event.timestamp;
  if (sentAt !== undefined && original !== undefined) {
    event.timestamp = new Date(receivedAt - (sentAt - original)).toISOString();
    if (event.sentAt === undefined) event.sentAt = new Date(sentAt).toISOString();
  } else {
    const given = parseTime(event.timestamp);
    event.timestamp = new Date(given ?? receivedAt).toISOString();
  }
  event.receivedAt = new Date(receivedAt).toISOString();
  return event;
}
