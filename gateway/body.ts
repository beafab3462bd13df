// Reading request bodies: JSON only (application/json, or text/plain as browsers send to skip CORS
// preflight), optionally gzip/deflate-compressed, with the size limit applied to the decompressed bytes.

import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from './errors.js';
import type { GatewayMetrics } from './metrics.js';
import { requestState } from './request-state.js';

export const JSON_MEDIA_TYPES = ['application/json', 'text/plain'];

function decompressor(encoding: string) {
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    default:
      return undefined;
  }
}

function parseJson(req: FastifyRequest, body: Buffer, metrics: GatewayMetrics): unknown {
  metrics.requestBytes.inc({ route: req.routeOptions.url ?? 'unmatched' }, body.length);
  requestState(req).bodyBytes = body.length;
  // JSON is UTF-8 (RFC 8259). Decoding other bytes would replace them with U+FFFD, and two events that
  // differ only there (say, in their messageId) would become one.
  if (!isUtf8(body)) throw new GatewayError('GW_BODY_NOT_UTF8');
  let text = body.toString('utf8');
  // A UTF-8 byte-order mark is legal in a file but not in JSON.parse's input; some clients send one.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text);
  } catch (err) {
    if (text.trim() === '') throw new GatewayError('GW_MALFORMED_JSON', 'the body is empty');
    throw new GatewayError('GW_MALFORMED_JSON', (err as Error).message);
  }
}

export function registerBodyParsing(app: FastifyInstance, metrics: GatewayMetrics): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(JSON_MEDIA_TYPES, { parseAs: 'buffer' }, (req, body, done) => {
    try {
      done(null, parseJson(req, body as Buffer, metrics));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.addContentTypeParser('*', (req, _payload, done) => {
    const given = req.headers['content-type'];
    done(
      new GatewayError(
        'GW_UNSUPPORTED_MEDIA_TYPE',
        given ? `got "${given}"` : 'the Content-Type header is missing',
      ),
      undefined,
    );
  });

  app.addHook('preParsing', (req, _reply, payload, done) => {
    const state = requestState(req);
    const header = req.headers['content-encoding']?.trim().toLowerCase();
    if (header === undefined || header === '' || header === 'identity') {
      state.bodyStream = payload;
      return done(null, payload);
    }
    const inflate = decompressor(header);
    if (!inflate) {
      return done(new GatewayError('GW_UNSUPPORTED_ENCODING', `got "${req.headers['content-encoding']}"`));
    }
    // Fastify compares the compressed byte count with Content-Length and the limit through this field.
    const counted = inflate as typeof inflate & { receivedEncodedLength: number };
    counted.receivedEncodedLength = 0;
    payload.on('data', (chunk: Buffer) => {
      counted.receivedEncodedLength += chunk.length;
    });
    payload.on('error', (err) => inflate.destroy(err));
    payload.pipe(inflate);
    // Stop inflating once the request is answered (e.g. rejected for size): a small "zip bomb" must
    // not keep the CPU busy after its answer was sent.
    state.cleanup = () => {
      payload.unpipe(inflate);
      inflate.destroy();
    };
    state.bodyStream = inflate;
    done(null, inflate as unknown as Readable & typeof payload);
  });
}
