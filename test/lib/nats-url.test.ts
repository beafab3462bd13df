// lib/nats-url.ts: credentials in NATS URLs turned into connection options, and URLs as logs show them.

import { describe, expect, it } from 'vitest';
import { displayServers, displayUrl, natsUrlCredentials } from '../../lib/nats-url.js';

describe('displayUrl', () => {
  it.each([
    ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4222'],
    ['nats://user:secret@nats:4222', 'nats://user:***@nats:4222'],
    ['tls://s3cr3t-token@nats.example:4222', 'tls://***@nats.example:4222'],
    ['127.0.0.1:4222', '127.0.0.1:4222'],
  ])('shows %s as %s', (url, shown) => {
    expect(displayUrl(url)).toBe(shown);
  });
});

describe('displayServers', () => {
  it('masks each URL of a comma-separated list', () => {
    expect(displayServers('nats://a:pw@n1:4222, nats://n2:4222')).toBe(
      'nats://a:***@n1:4222, nats://n2:4222',
    );
    expect(displayServers(['nats://t@n1'])).toBe('nats://***@n1');
  });
});

describe('natsUrlCredentials', () => {
  it('moves user and password out of the URLs, decoding them', () => {
    expect(natsUrlCredentials('nats://gw:p%40ss@n1:4222, nats://n2:4222')).toEqual({
      servers: ['nats://n1:4222', 'nats://n2:4222'],
      user: 'gw',
      pass: 'p@ss',
    });
  });

  it('reads a lone userinfo as a token', () => {
    expect(natsUrlCredentials(['tls://t0ken@n1:4222'])).toEqual({
      servers: ['tls://n1:4222'],
      token: 't0ken',
    });
  });

  it('leaves URLs without credentials as they are', () => {
    expect(natsUrlCredentials('nats://127.0.0.1:4222')).toEqual({ servers: ['nats://127.0.0.1:4222'] });
  });
});
