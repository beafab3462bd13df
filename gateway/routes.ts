// Segment's HTTP Tracking API: the single-event endpoints, /v1/batch (and its /v1/import alias), and
// the one-letter paths analytics.js uses. Each request is authenticated, checked, enriched, published.

import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { EventType, SegmentEvent } from '../api/events.js';
import { sourceFromBody, sourceOf, writeKeyFromHeader } from './auth.js';
import { clientAddress } from './client-address.js';
import { enrich, type RequestContext, requestContext } from './enrich.js';
import { GATEWAY_ERRORS, GatewayError, type RejectedEvent } from './errors.js';
import type { Admission, InFlightBudget } from './in-flight-budget.js';
import type { GatewayMetrics } from './metrics.js';
import type { EventPublisher, PreparedEvent } from './publish.js';
import { requestState } from './request-state.js';
import { checkBatchEnvelope, checkEvent, isObject, LIMITS, type Problem } from './validate.js';
import type { WriteKeys } from './write-keys.js';

/** Paths of each single-event endpoint: Segment's documented one, then analytics.js's short form. */
export const SINGLE_EVENT_ROUTES: ReadonlyArray<readonly [EventType, readonly string[]]> = [
  ['identify', ['/v1/identify', '/v1/i']],
  ['track', ['/v1/track', '/v1/t']],
  ['page', ['/v1/page', '/v1/p']],
  ['screen', ['/v1/screen', '/v1/s']],
  ['group', ['/v1/group', '/v1/g']],
  ['alias', ['/v1/alias', '/v1/a']],
];
export const BATCH_ROUTES: readonly string[] = ['/v1/batch', '/v1/import', '/v1/b'];

/** Route config: which body limit applies, so a too-large body gets the right error code. */
export interface TrackingRouteConfig {
  batch: boolean;
}

export interface TrackingDeps {
  writeKeys: WriteKeys;
  publisher: EventPublisher;
  metrics: GatewayMetrics;
  budget: InFlightBudget;
  /** Bytes a batch's events may take as stored (each with the batch's context copied in). */
  maxStoredBytes: number;
}

type Json = Record<string, unknown>;

export interface BatchResponse {
  success: true;
  accepted: number;
  rejected: RejectedEvent[];
}

function problemError(p: Problem): GatewayError {
  return new GatewayError(p.code, p.detail);
}

/**
 * Enriches and serializes one checked event. The size rule applies to the event as the client sent it,
 * plus the batch's context and integrations (`sharedBytes`): they are merged into every event, and
 * without counting them one 500 KB request could fan out into gigabytes of published events.
 */
function prepare(raw: Json, type: EventType, req: RequestContext, sharedBytes = 0): PreparedEvent | Problem {
  let event: SegmentEvent;
  let data: Buffer;
  try {
    if (sharedBytes > 0) {
      const sent = Buffer.byteLength(JSON.stringify(raw)) + sharedBytes;
      if (sent > LIMITS.eventBytes) {
        return {
          code: 'GW_EVENT_TOO_LARGE',
          detail: `${sent} bytes with the batch's context and integrations, at most ${LIMITS.eventBytes}`,
        };
      }
    }
    event = enrich(raw, type, req);
    data = Buffer.from(JSON.stringify(event));
  } catch (err) {
    // JSON.parse accepts nesting that JSON.stringify (recursive) cannot write back out.
    if (err instanceof RangeError) return { code: 'GW_EVENT_TOO_DEEP' };
    throw err;
  }
  // Serializing the raw event again is only needed when the enriched one is over the limit (rare).
  if (data.length > LIMITS.eventBytes) {
    // Cannot throw: the enriched event, a superset of this one, serialized.
    const sent = Buffer.byteLength(JSON.stringify(raw));
    if (sent > LIMITS.eventBytes) {
      return { code: 'GW_EVENT_TOO_LARGE', detail: `${sent} bytes, at most ${LIMITS.eventBytes}` };
    }
  }
  return { type, messageId: event.messageId as string, data };
}

function isPrepared(value: PreparedEvent | Problem): value is PreparedEvent {
  return 'data' in value;
}

/**
 * The bytes a request's body will take: its Content-Length when plain, else (compressed or chunked,
 * so unknown until read) the route's limit, which is what the parser may hold at most.
 */
function bodyEstimate(req: FastifyRequest, limit: number): number {
  const encoding = req.headers['content-encoding']?.trim().toLowerCase();
  const length = Number(req.headers['content-length']);
  const plain = encoding === undefined || encoding === '' || encoding === 'identity';
  return plain && Number.isSafeInteger(length) && length >= 0 ? Math.min(length, limit) : limit;
}

export function registerTrackingRoutes(app: FastifyInstance, deps: TrackingDeps): void {
  const { writeKeys, publisher, metrics, budget } = deps;

  function refusal(verdict: Admission, what: string): GatewayError | undefined {
    if (verdict === 'admitted') return undefined;
    const code = verdict === 'throttled' ? 'GW_THROTTLED' : 'GW_OVERLOADED';
    metrics.refusals.inc({ reason: code });
    const { events, bytes } = budget.held;
    return new GatewayError(
      code,
      `${what}; the gateway holds ${events} events and ${bytes} bytes for ${budget.activeKeys} write keys`,
    );
  }

  /** Basic auth is checked before the body is read: an unknown key costs no parsing. */
  const authenticateHeader: onRequestHookHandler = (req, _reply, done) => {
    const header = req.headers.authorization;
    if (header === undefined) return done();
    try {
      const key = writeKeyFromHeader(header);
      const state = requestState(req);
      state.source = sourceOf(writeKeys, key);
      state.writeKey = key;
      done();
    } catch (err) {
      done(err as Error);
    }
  };

  /** The body's bytes are taken from the budget before it is read: a slow body holds them meanwhile. */
  const admitBody: onRequestHookHandler = (req, _reply, done) => {
    const state = requestState(req);
    const lease = budget.lease(state.writeKey, clientAddress(req.ip));
    state.lease = lease;
    const bytes = bodyEstimate(req, req.routeOptions.bodyLimit ?? LIMITS.batchBytes);
    done(refusal(lease.hold({ events: 0, bytes }), `a body of up to ${bytes} bytes`));
  };

  function bodyAndSource(req: FastifyRequest): { body: Json; source: string } {
    const body = req.body;
    if (!isObject(body)) {
      throw new GatewayError(
        'GW_BODY_NOT_OBJECT',
        body === undefined ? 'the request has no body' : undefined,
      );
    }
    const state = requestState(req);
    if (state.source === undefined) {
      state.source = sourceFromBody(writeKeys, body);
      state.writeKey = body.writeKey as string;
    }
    return { body, source: state.source };
  }

  async function publish(
    req: FastifyRequest,
    source: string,
    events: PreparedEvent[],
    storedBytes: number,
  ): Promise<void> {
    const state = requestState(req);
    // The events are held beside the body until JetStream acknowledged them: the budget counts both.
    const wanted = { events: events.length, bytes: state.bodyBytes + storedBytes };
    const refused =
      state.lease && refusal(state.lease.hold(wanted, state.writeKey), `${events.length} events`);
    if (refused) throw refused;
    const { duplicates } = await publisher.publish(source, events);
    state.accepted = events.length;
    state.duplicates = duplicates;
    const perType = new Map<EventType, number>();
    for (const e of events) perType.set(e.type, (perType.get(e.type) ?? 0) + 1);
    for (const [type, n] of perType) metrics.events.inc({ source, type }, n);
  }

  for (const [type, paths] of SINGLE_EVENT_ROUTES) {
    for (const url of paths) {
      app.post(
        url,
        {
          bodyLimit: LIMITS.eventBytes,
          onRequest: [authenticateHeader, admitBody],
          config: { batch: false },
        },
        async (req) => {
          const { body, source } = bodyAndSource(req);
          const problem = checkEvent(body, type);
          if (problem) throw problemError(problem);
          const prepared = prepare(body, type, requestContext({}, Date.now()));
          if (!isPrepared(prepared)) throw problemError(prepared);
          await publish(req, source, [prepared], prepared.data.length);
          return { success: true };
        },
      );
    }
  }

  for (const url of BATCH_ROUTES) {
    app.post(
      url,
      { bodyLimit: LIMITS.batchBytes, onRequest: [authenticateHeader, admitBody], config: { batch: true } },
      async (req): Promise<BatchResponse> => {
        const { body, source } = bodyAndSource(req);
        const envelope = checkBatchEnvelope(body);
        if ('code' in envelope) throw problemError(envelope);

        const shared = requestContext(envelope, Date.now());
        const accepted: PreparedEvent[] = [];
        const rejected: RejectedEvent[] = [];
        let storedBytes = 0;
        envelope.batch.forEach((raw, index) => {
          const result =
            checkEvent(raw) ??
            prepare(raw as Json, (raw as Json).type as EventType, shared, envelope.sharedBytes);
          if (isPrepared(result)) {
            // Checked as the batch grows, so a refused batch never holds more than the limit.
            storedBytes += result.data.length;
            if (storedBytes > deps.maxStoredBytes) {
              throw new GatewayError(
                'GW_BATCH_STORED_TOO_LARGE',
                `over ${deps.maxStoredBytes} bytes by event ${index} of ${envelope.batch.length}` +
                  (envelope.sharedBytes > 0
                    ? ` (${envelope.sharedBytes} bytes of batch context and integrations in each)`
                    : ''),
              );
            }
            accepted.push(result);
            return;
          }
          const problem: Problem = result;
          const spec = GATEWAY_ERRORS[problem.code];
          const messageId = isObject(raw) && typeof raw.messageId === 'string' ? raw.messageId : undefined;
          rejected.push({
            index,
            ...(messageId !== undefined ? { messageId } : {}),
            code: problem.code,
            message: problem.detail ? `${spec.message}: ${problem.detail}` : spec.message,
          });
          metrics.rejects.inc({ reason: problem.code });
        });
        requestState(req).rejected = rejected.length;

        if (accepted.length === 0) {
          throw new GatewayError(
            'GW_BATCH_ALL_REJECTED',
            `${rejected.length} of ${rejected.length}`,
            rejected,
          );
        }
        await publish(req, source, accepted, storedBytes);
        return { success: true, accepted: accepted.length, rejected };
      },
    );
  }
}
