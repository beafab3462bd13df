// What the gateway learns about a request while handling it (source, events accepted and rejected),
// kept on the request so the logging and metrics hooks can report it once the answer is sent.

import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { GatewayErrorCode } from './errors.js';
import type { Lease } from './in-flight-budget.js';

export class RequestState {
  /** Source of the write key, once authenticated. */
  source: string | undefined;
  /** The write key, once known: the in-flight budget is shared by key. Never logged. */
  writeKey: string | undefined;
  /** The request's part of the in-flight budget, from its headers until it ends. */
  lease: Lease | undefined;
  /** Bytes of the body as parsed (after decompression). */
  bodyBytes = 0;
  accepted = 0;
  rejected = 0;
  duplicates = 0;
  /** Catalogue code of the error answered, if any. */
  code: GatewayErrorCode | undefined;
  /** Why the events were not stored (retryable errors only: their messages carry no client values). */
  error: string | undefined;
  /** The stream the body parser reads (decompressed), so a deadline can end the read. */
  bodyStream: Readable | undefined;
  /** Releases resources tied to the request (a decompression stream) once it is answered. */
  cleanup: (() => void) | undefined;
}

// A plain decorator rather than a FastifyRequest type augmentation: the runner's fastify server shares
// the type, and should not see gateway fields on its requests.
const KEY = 'dfnGateway';

export function decorateRequestState(app: FastifyInstance): void {
  app.decorateRequest(KEY, null);
}

export function requestState(req: FastifyRequest): RequestState {
  const holder = req as unknown as Record<typeof KEY, RequestState | null>;
  let state = holder[KEY];
  if (!state) {
    state = new RequestState();
    holder[KEY] = state;
  }
  return state;
}
