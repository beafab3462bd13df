// lib/nats-url.ts: NATS URLs as logs show them, with passwords and tokens masked.

import { describe, expect, it } from 'vitest';
import { displayServers, displayUrl } from '../../lib/nats-url.js';

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
