// Authentication by write key (Basic-auth username or body "writeKey") and the write-keys file:
// unknown or missing keys get 401 with nothing published; the file is re-read when it changes.

import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseWriteKeys, WriteKeys, WriteKeysFileError } from '../../gateway/write-keys.js';
import { waitFor } from '../helpers/wait.js';
import { basic, type GatewayHarness, gatewayFixture, WRITE_KEY } from './harness.js';

const gw = gatewayFixture();
let h: GatewayHarness;

const track = { userId: 'u1', event: 'Signed Up' };

describe('write key in the request', () => {
  it('accepts the write key as the Basic-auth username with an empty password', async () => {
    h = await gw.start();
    const res = await h.post('/v1/track', track, { headers: { authorization: basic(WRITE_KEY) } });
    expect(res.status).toBe(200);
    expect(await h.count()).toBe(1);
  });

  it('ignores a Basic-auth password (Segment libraries send none, some send one)', async () => {
    h = await gw.start();
    const res = await h.post('/v1/track', track, { headers: { authorization: basic(WRITE_KEY, 'x') } });
    expect(res.status).toBe(200);
  });

  it('accepts the write key as "writeKey" in the body, and never publishes it', async () => {
    h = await gw.start();
    const res = await h.post('/v1/track', { ...track, writeKey: WRITE_KEY });
    expect(res.status).toBe(200);
    const [stored] = await h.stored();
    expect(stored!.event).not.toHaveProperty('writeKey');
  });

  it('accepts a batch authenticated by its body writeKey and strips it from every event', async () => {
    h = await gw.start();
    const res = await h.post('/v1/batch', {
      writeKey: WRITE_KEY,
      batch: [
        { type: 'track', ...track, writeKey: 'per-event-copy' },
        { type: 'identify', userId: 'u1' },
      ],
    });
    expect(res.status).toBe(200);
    for (const s of await h.stored()) expect(s.event).not.toHaveProperty('writeKey');
  });

  it('answers an unknown Basic-auth key with 401 GW_WRITE_KEY_UNKNOWN and publishes nothing', async () => {
    h = await gw.start();
    const res = await h.post('/v1/track', track, { writeKey: 'nope' });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ success: false, code: 'GW_WRITE_KEY_UNKNOWN' });
    expect(await h.count()).toBe(0);
  });

  it('answers an unknown body writeKey with 401 and publishes nothing', async () => {
    h = await gw.start();
    const res = await h.post('/v1/batch', { writeKey: 'nope', batch: [{ type: 'track', ...track }] });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('GW_WRITE_KEY_UNKNOWN');
    expect(await h.count()).toBe(0);
  });

  it('answers a request without any write key with 401 GW_WRITE_KEY_MISSING explaining both forms', async () => {
    h = await gw.start();
    const res = await h.post('/v1/track', track);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('GW_WRITE_KEY_MISSING');
    expect(res.body.message).toMatch(/Basic-auth username.*writeKey/);
    expect(await h.count()).toBe(0);
  });

  it('answers a non-Basic Authorization header with 401 GW_AUTH_MALFORMED', async () => {
    h = await gw.start();
    const res = await h.post(
      '/v1/track',
      { ...track, writeKey: WRITE_KEY },
      {
        headers: { authorization: 'Bearer abc' },
      },
    );
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('GW_AUTH_MALFORMED');
    expect(await h.count()).toBe(0);
  });

  it('answers Basic auth with an empty username with 401 GW_AUTH_MALFORMED', async () => {
    h = await gw.start();
    const res = await h.post('/v1/track', track, { headers: { authorization: basic('') } });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('GW_AUTH_MALFORMED');
  });

  it('checks the Basic-auth key before reading the body: an unknown key with a broken body is 401', async () => {
    h = await gw.start();
    const res = await h.post('/v1/track', '{not json', { writeKey: 'nope', raw: true });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('GW_WRITE_KEY_UNKNOWN');
  });
});

describe('the write-keys file', () => {
  it('picks up an added key without a restart', async () => {
    h = await gw.start();
    expect((await h.post('/v1/track', track, { writeKey: 'fresh' })).status).toBe(401);
    h.writeKeys({ [WRITE_KEY]: 'web', fresh: 'mobile' });
    await waitFor(
      'the added key to be accepted',
      async () => (await h.post('/v1/track', track, { writeKey: 'fresh' })).status === 200,
    );
    const subjects = (await h.stored()).map((s) => s.subject);
    expect(subjects).toEqual([`${h.prefix}.events.mobile.track`]);
    expect(await h.metric('dfn_gateway_write_keys')).toBe(2);
  });

  it('stops accepting a removed key', async () => {
    h = await gw.start();
    h.writeKeys({ other: 'web' });
    await h.gateway.writeKeys.check();
    const res = await h.post('/v1/track', track, { writeKey: WRITE_KEY });
    expect(res.status).toBe(401);
    expect(await h.count()).toBe(0);
  });

  it('keeps the previous keys when the file becomes invalid, and reports the error once', async () => {
    h = await gw.start();
    const errors: string[] = [];
    h.gateway.writeKeys.on('reloadError', (err) => errors.push(err.message));
    writeFileSync(h.writeKeysFile, 'just a string\n');
    await h.gateway.writeKeys.check();
    await h.gateway.writeKeys.check();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('must be a mapping');
    expect((await h.post('/v1/track', track, { writeKey: WRITE_KEY })).status).toBe(200);
    expect(await h.metric('dfn_gateway_write_keys_reloads_total', { result: 'error' })).toBe(1);
  });

  it('follows a Kubernetes-style Secret update (the file replaced, not edited)', async () => {
    h = await gw.start();
    const { renameSync } = await import('node:fs');
    const next = `${h.writeKeysFile}.new`;
    writeFileSync(next, '"rotated": web\n');
    renameSync(next, h.writeKeysFile);
    await waitFor(
      'the rotated key to be accepted',
      async () => (await h.post('/v1/track', track, { writeKey: 'rotated' })).status === 200,
    );
  });
});

describe('parseWriteKeys', () => {
  it('reads a YAML mapping of write key to source', () => {
    expect([...parseWriteKeys('a1: web\nb2: web\nc3: backend.eu\n')]).toEqual([
      ['a1', 'web'],
      ['b2', 'web'],
      ['c3', 'backend.eu'],
    ]);
  });

  it('reads JSON too', () => {
    expect(parseWriteKeys('{"k": "web"}').get('k')).toBe('web');
  });

  it('treats an empty file as no keys', () => {
    expect(parseWriteKeys('# nothing yet\n').size).toBe(0);
  });

  it.each([
    ['- a\n- b\n', /must be a mapping/],
    ['k: [web]\n', /non-empty string/],
    ['k: "web*"\n', /cannot be used in a NATS subject/],
    ['"a:b": web\n', /contains ':'/],
    ['" k": web\n', /surrounding spaces/],
    ['k: web\n  bad indent: x\n', /not valid YAML/],
  ])('rejects %j with a message saying what is wrong', (text, message) => {
    expect(() => parseWriteKeys(text, 'keys.yaml')).toThrow(WriteKeysFileError);
    expect(() => parseWriteKeys(text, 'keys.yaml')).toThrow(message);
  });

  it('refuses to load a file that does not exist', async () => {
    await expect(WriteKeys.load('/nonexistent/write-keys.yaml')).rejects.toThrow(/no such file/);
  });
});
