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

/** What every event of one request shares: computed once per request, not once per event. */
export interface RequestContext extends RequestDefaults {
  receivedAt: number;
  receivedAtIso: string;
  sentAtIso?: string;
}

export function requestContext(defaults: RequestDefaults, receivedAt: number): RequestContext {
  return {
    ...(defaults.context ? { context: defaults.context } : {}),
    ...(defaults.integrations ? { integrations: defaults.integrations } : {}),
    ...(defaults.sentAt !== undefined ? { sentAt: defaults.sentAt } : {}),
    receivedAt,
    receivedAtIso: new Date(receivedAt).toISOString(),
    ...(defaults.sentAt !== undefined ? { sentAtIso: new Date(defaults.sentAt).toISOString() } : {}),
  };
}

function setOwn(target: Json, key: string, value: unknown): void {
  // Plain assignment of "__proto__" would set the prototype (and drop the data); define it instead.
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/**
 * Deep-merges `defaults` under `own`: the event's values win, nested objects merge key by key.
 * A "__proto__" key in client JSON stays plain data.
 */
export function mergeUnder(defaults: Json, own: unknown): Json {
  const out: Json = { ...defaults };
  if (!isObject(own)) return out;
  for (const key of Object.keys(own)) {
    const mine = own[key];
    const theirs = Object.hasOwn(out, key) ? out[key] : undefined;
    setOwn(out, key, isObject(mine) && isObject(theirs) ? mergeUnder(theirs, mine) : mine);
  }
  return out;
}

/**
 * Builds the published form of a checked event (a new object: the client's stays as sent). The
 * client's time becomes `originalTimestamp`; when the client also said when it sent the request,
 * `timestamp = receivedAt − (sentAt − originalTimestamp)` cancels its clock's skew, as Segment does.
 */
export function enrich(raw: Json, type: EventType, req: RequestContext): SegmentEvent {
  // The fields set below come first in the literal: V8 then copies the client's fields into an object
  // already shaped for them, which is twice as fast as adding properties to a spread copy.
  const event: SegmentEvent = {
    type,
    messageId: undefined,
    timestamp: undefined,
    originalTimestamp: undefined,
    sentAt: undefined,
    receivedAt: undefined,
    ...raw,
  };
  event.type = type;
  // The write key authenticates the request; it must never travel on to functions or logs.
  // (Set to undefined, which JSON omits, rather than deleted: delete makes the object slow.)
  if (event.writeKey !== undefined) event.writeKey = undefined;

  if (event.messageId === undefined || event.messageId === null) event.messageId = randomUUID();
  if (typeof event.userId === 'number') event.userId = String(event.userId);
  if (typeof event.anonymousId === 'number') event.anonymousId = String(event.anonymousId);
  if (typeof event.groupId === 'number') event.groupId = String(event.groupId);
  if (typeof event.previousId === 'number') event.previousId = String(event.previousId);
  if (req.context) event.context = mergeUnder(req.context, event.context);
  if (req.integrations) event.integrations = mergeUnder(req.integrations, event.integrations);

  const clientTime = event.originalTimestamp ?? event.timestamp;
  const original = parseTime(clientTime);
  if (original !== undefined) event.originalTimestamp = clientTime as string;
  const ownSentAt = parseTime(event.sentAt);
  if (ownSentAt === undefined && req.sentAtIso !== undefined) event.sentAt = req.sentAtIso;
  const sentAt = ownSentAt ?? req.sentAt;
  if (sentAt !== undefined && original !== undefined) {
    event.timestamp = new Date(req.receivedAt - (sentAt - original)).toISOString();
  } else {
    // No sentAt, no skew to cancel: the client's own time stands (receivedAt if it gave none).
    const given = parseTime(event.timestamp) ?? original;
    event.timestamp = given === undefined ? req.receivedAtIso : new Date(given).toISOString();
  }
  event.receivedAt = req.receivedAtIso;
  return event;
}
