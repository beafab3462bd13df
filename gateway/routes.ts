// Segment's HTTP Tracking API: the single-event endpoints, /v1/batch (and its /v1/import alias), and
// the one-letter paths analytics.js uses. Each request is authenticated, checked, enriched, published.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EventType, SegmentEvent } from '../api/events.js';
import { sourceFromBody, sourceOf, writeKeyFromHeader } from './auth.js';
import { enrich, type RequestContext, requestContext } from './enrich.js';
import { GATEWAY_ERRORS, GatewayError, type RejectedEvent } from './errors.js';
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

export function registerTrackingRoutes(app: FastifyInstance, deps: TrackingDeps): void {
  const { writeKeys, publisher, metrics } = deps;

  /** Basic auth is checked before the body is read: an unknown key costs no parsing. */
  const authenticateHeader = async (req: FastifyRequest) => {
    const header = req.headers.authorization;
    if (header !== undefined) requestState(req).source = sourceOf(writeKeys, writeKeyFromHeader(header));
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
    state.source ??= sourceFromBody(writeKeys, body);
    return { body, source: state.source };
  }

  async function publish(req: FastifyRequest, source: string, events: PreparedEvent[]): Promise<void> {
    const { duplicates } = await publisher.publish(source, events);
    const state = requestState(req);
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
        { bodyLimit: LIMITS.eventBytes, onRequest: authenticateHeader, config: { batch: false } },
        async (req) => {
          const { body, source } = bodyAndSource(req);
          const problem = checkEvent(body, type);
          if (problem) throw problemError(problem);
          const prepared = prepare(body, type, requestContext({}, Date.now()));
          if (!isPrepared(prepared)) throw problemError(prepared);
          await publish(req, source, [prepared]);
          return { success: true };
        },
      );
    }
  }

  for (const url of BATCH_ROUTES) {
    app.post(
      url,
      { bodyLimit: LIMITS.batchBytes, onRequest: authenticateHeader, config: { batch: true } },
      async (req): Promise<BatchResponse> => {
        const { body, source } = bodyAndSource(req);
        const envelope = checkBatchEnvelope(body);
        if ('code' in envelope) throw problemError(envelope);

        const shared = requestContext(envelope, Date.now());
        const accepted: PreparedEvent[] = [];
        const rejected: RejectedEvent[] = [];
        envelope.batch.forEach((raw, index) => {
          const result =
            checkEvent(raw) ??
            prepare(raw as Json, (raw as Json).type as EventType, shared, envelope.sharedBytes);
          if (isPrepared(result)) {
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
        await publish(req, source, accepted);
        return { success: true, accepted: accepted.length, rejected };
      },
    );
  }
}
