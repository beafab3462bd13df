// Who sent a request: Segment's write key, as the Basic-auth username (empty password) or as
// "writeKey" in the JSON body, mapped to the source whose subjects the events are published under.

import { GatewayError } from './errors.js';
import type { WriteKeys } from './write-keys.js';

/** The write key in an Authorization header; throws GW_AUTH_MALFORMED for anything but Basic. */
export function writeKeyFromHeader(header: string): string {
  const space = header.indexOf(' ');
  const scheme = space < 0 ? header : header.slice(0, space);
  if (scheme.toLowerCase() !== 'basic') {
    throw new GatewayError('GW_AUTH_MALFORMED', `the "${scheme}" scheme is not supported`);
  }
  if (space < 0) throw new GatewayError('GW_AUTH_MALFORMED', 'no credentials after "Basic"');
  const decoded = Buffer.from(header.slice(space + 1).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const key = colon < 0 ? decoded : decoded.slice(0, colon);
  if (key === '') throw new GatewayError('GW_AUTH_MALFORMED', 'the username (the write key) is empty');
  return key;
}

export function sourceOf(writeKeys: WriteKeys, writeKey: string): string {
  const source = writeKeys.sourceOf(writeKey);
  if (source === undefined) throw new GatewayError('GW_WRITE_KEY_UNKNOWN');
  return source;
}

/** Authenticates by the body's "writeKey", for requests that came without an Authorization header. */
export function sourceFromBody(writeKeys: WriteKeys, body: Record<string, unknown>): string {
  const key = body.writeKey;
  if (key === undefined || key === null || key === '') throw new GatewayError('GW_WRITE_KEY_MISSING');
  if (typeof key !== 'string') throw new GatewayError('GW_WRITE_KEY_UNKNOWN', '"writeKey" must be a string');
  return sourceOf(writeKeys, key);
}
