// Segment event shapes as they travel through the platform (gateway → JetStream → runner → sandbox).
// The one place that says which event types exist and which handler each dispatches to.

export const EVENT_TYPES = ['identify', 'track', 'page', 'screen', 'group', 'alias', 'delete'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const HANDLER_NAMES = [
  'onIdentify',
  'onTrack',
  'onPage',
  'onScreen',
  'onGroup',
  'onAlias',
  'onDelete',
  'onBatch',
] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];

/** Which single-event handler an event of each type is dispatched to. */
export const HANDLER_FOR_TYPE: Readonly<Record<EventType, Exclude<HandlerName, 'onBatch'>>> = {
  identify: 'onIdentify',
  track: 'onTrack',
  page: 'onPage',
  screen: 'onScreen',
  group: 'onGroup',
  alias: 'onAlias',
  delete: 'onDelete',
};

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

/** Fields common to every Segment event (see Segment's Spec: Common Fields). */
export interface SegmentEvent {
  type: EventType | string;
  messageId?: string;
  userId?: string | null;
  anonymousId?: string | null;
  event?: string;
  name?: string;
  category?: string;
  groupId?: string;
  previousId?: string;
  properties?: Record<string, unknown>;
  traits?: Record<string, unknown>;
  context?: Record<string, unknown>;
  integrations?: Record<string, unknown>;
  timestamp?: string;
  originalTimestamp?: string;
  sentAt?: string;
  receivedAt?: string;
  [field: string]: unknown;
}

/** Settings values handed to a function: plain JSON, sensitive ones included (they are redacted on output). */
export type FunctionSettings = Record<string, unknown>;
