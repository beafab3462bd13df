// Every error the gateway can answer with, defined once: a stable code, an HTTP status and a message.
// Clients, logs, metrics (rejects by reason) and the README all key on these codes, so never rename one.

export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
  /** Seconds a client should wait before retrying (sent as Retry-After); only on retryable errors. */
  readonly retryAfter?: number;
}

export const GATEWAY_ERRORS = {
  // Authentication: nothing is published without a known write key.
  GW_WRITE_KEY_MISSING: {
    status: 401,
    message:
      'no write key: send it as the Basic-auth username (empty password) or as "writeKey" in the JSON body',
  },
  GW_WRITE_KEY_UNKNOWN: { status: 401, message: 'unknown write key' },
  GW_AUTH_MALFORMED: {
    status: 401,
    message: 'Authorization header must be "Basic base64(<writeKey>:)"',
  },

  // The request as a whole.
  GW_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'send JSON with Content-Type: application/json' },
  GW_UNSUPPORTED_ENCODING: {
    status: 415,
    message: 'unsupported Content-Encoding: use gzip, deflate or none',
  },
  GW_MALFORMED_BODY: { status: 400, message: 'the request body could not be read' },
  GW_MALFORMED_JSON: { status: 400, message: 'the request body is not valid JSON' },
  GW_BODY_NOT_UTF8: { status: 400, message: 'the request body is not valid UTF-8, as JSON must be' },
  GW_BODY_NOT_OBJECT: { status: 400, message: 'the request body must be a JSON object' },
  GW_REQUEST_TOO_LARGE: { status: 400, message: 'the request body is too large' },
  GW_BATCH_NOT_ARRAY: { status: 400, message: '"batch" must be an array of events' },
  GW_BATCH_EMPTY: { status: 400, message: '"batch" has no events' },
  GW_BATCH_TOO_MANY_EVENTS: { status: 400, message: 'too many events in one batch' },
  GW_BATCH_ALL_REJECTED: { status: 400, message: 'every event in the batch was rejected' },
  GW_BATCH_STORED_TOO_LARGE: {
    status: 400,
    message:
      "the batch's events are too large as stored (the batch's context and integrations are copied into each event)",
  },
  GW_REQUEST_TIMEOUT: {
    status: 408,
    message:
      'the request did not arrive in time (the headers, then the body, each within the request timeout)',
  },
  GW_HEADERS_TOO_LARGE: { status: 431, message: 'the request headers are too large' },
  GW_MALFORMED_REQUEST: { status: 400, message: 'not an HTTP/1.1 request' },
  GW_ROUTE_NOT_FOUND: {
    status: 404,
    message:
      'no such endpoint: POST to /v1/identify, /v1/track, /v1/page, /v1/screen, /v1/group, /v1/alias, /v1/batch or /v1/import',
  },

  // One event (the whole request for single-event endpoints; an entry of "rejected" in a batch).
  GW_EVENT_NOT_OBJECT: { status: 400, message: 'an event must be a JSON object' },
  GW_EVENT_TOO_LARGE: { status: 400, message: 'the event is too large' },
  GW_EVENT_TOO_DEEP: { status: 400, message: 'the event nests objects or arrays too deeply' },
  GW_EVENT_TYPE_INVALID: {
    status: 400,
    message: '"type" must be one of identify, track, page, screen, group, alias, delete',
  },
  GW_IDENTITY_MISSING: { status: 400, message: 'the event needs a "userId" or an "anonymousId"' },
  GW_TRACK_EVENT_MISSING: { status: 400, message: 'a track event needs a non-empty "event" name' },
  GW_GROUP_ID_MISSING: { status: 400, message: 'a group event needs a "groupId"' },
  GW_PREVIOUS_ID_MISSING: { status: 400, message: 'an alias event needs a "previousId"' },
  GW_FIELD_INVALID: { status: 400, message: 'a field has the wrong type' },
  GW_MESSAGE_ID_INVALID: {
    status: 400,
    message:
      '"messageId" must be a non-empty string of at most 512 characters, without control characters or surrounding spaces',
  },
  GW_TIMESTAMP_INVALID: { status: 400, message: 'a timestamp is not an ISO-8601 date' },

  // JetStream could not take the events: retry later, nothing was lost (messageIds dedupe the retry).
  GW_NATS_UNAVAILABLE: { status: 503, message: 'the event store (NATS) is not connected', retryAfter: 5 },
  GW_STREAM_UNAVAILABLE: {
    status: 503,
    message: 'the events stream is not available (not created yet, or JetStream is down)',
    retryAfter: 5,
  },
  GW_PUBLISH_TIMEOUT: { status: 503, message: 'the event store did not acknowledge in time', retryAfter: 5 },
  GW_STREAM_FULL: { status: 429, message: 'the events stream is full', retryAfter: 30 },
  // The in-flight budget (in-flight-budget.ts): shared fairly, so one client cannot starve the others.
  GW_THROTTLED: {
    status: 429,
    message: "this client already holds its fair share of the gateway's in-flight budget",
    retryAfter: 1,
  },
  GW_OVERLOADED: { status: 503, message: 'the gateway holds all the events it can', retryAfter: 1 },
  GW_SHUTTING_DOWN: {
    status: 503,
    message: 'the gateway is stopping: resend (another replica takes it; messageIds make it safe)',
    retryAfter: 1,
  },
  GW_PUBLISH_FAILED: { status: 500, message: 'the event store refused the events' },
  GW_INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, ErrorSpec>;

export type GatewayErrorCode = keyof typeof GATEWAY_ERRORS;

/** An event of a batch that was not accepted, as listed in the response's "rejected" array. */
export interface RejectedEvent {
  index: number;
  messageId?: string;
  code: GatewayErrorCode;
  message: string;
}

/** An HTTP error with a catalogue code. `detail` says what exactly was wrong with this request. */
export class GatewayError extends Error {
  readonly statusCode: number;
  readonly retryAfter: number | undefined;

  constructor(
    readonly code: GatewayErrorCode,
    detail?: string,
    readonly rejected?: readonly RejectedEvent[],
  ) {
    const spec: ErrorSpec = GATEWAY_ERRORS[code];
    super(detail ? `${spec.message}: ${detail}` : spec.message);
    this.name = 'GatewayError';
    this.statusCode = spec.status;
    this.retryAfter = spec.retryAfter;
  }

  /** The JSON body sent to the client; `success: false` mirrors Segment's `{"success": true}`. */
  toBody(): { success: false; code: GatewayErrorCode; message: string; rejected?: readonly RejectedEvent[] } {
    return {
      success: false,
      code: this.code,
      message: this.message,
      ...(this.rejected ? { rejected: this.rejected } : {}),
    };
  }
}

export function isRetryable(code: GatewayErrorCode): boolean {
  const status: number = GATEWAY_ERRORS[code].status;
  return status === 429 || status >= 500;
}

/**
 * The catalogue error for anything thrown while answering: our own errors pass through, fastify's body
 * errors get their Segment-facing code, and everything else is an internal error (logged, not leaked).
 */
export function toGatewayError(err: unknown, route: { batch: boolean; bodyLimit: number }): GatewayError {
  if (err instanceof GatewayError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError(
        route.batch ? 'GW_REQUEST_TOO_LARGE' : 'GW_EVENT_TOO_LARGE',
        `at most ${route.bodyLimit} bytes${route.batch ? ' per batch' : ' per event'}`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError('GW_UNSUPPORTED_MEDIA_TYPE');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GatewayError('GW_MALFORMED_BODY', 'the body length does not match Content-Length');
    default:
      break;
  }
  // Body read failures (a corrupt gzip stream, a client that went away) carry a 4xx status.
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new GatewayError('GW_MALFORMED_BODY', e.message);
  }
  return new GatewayError('GW_INTERNAL');
}
