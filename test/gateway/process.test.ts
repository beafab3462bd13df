// `dfn gateway` as a process under the drills: a body trickling in is cut off by its deadline,
// SIGTERM ends whatever is still open once the grace period is over, and a heavy client starves no one.

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageType } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topology } from '../../api/jetstream.js';
import { LIMITS } from '../../gateway/validate.js';
import { spawnDfn } from '../helpers/dfn.js';
import { NatsServer } from '../helpers/nats-server.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { basic } from './harness.js';
import { answerOrHeld, batchBody, slowRequest } from './slow-client.js';

let nats: NatsServer;
let dir: string;
let keysFile: string;

beforeAll(async () => {
  nats = await NatsServer.start();
  dir = mkdtempSync(join(tmpdir(), 'dfn-gateway-shutdown-'));
  keysFile = join(dir, 'write-keys.yaml');
  writeFileSync(keysFile, 'slow_key: web\nheld_key: held\nheavy_key: heavy\nlight_key: light\n');
});
afterAll(async () => {
  await nats.dispose();
  rmSync(dir, { recursive: true, force: true });
});

interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

async function startGateway(prefix: string, flags: string[]): Promise<Started> {
  const port = await freePort();
  const child = spawnDfn(
    ['gateway', '--host', '127.0.0.1', '--port', String(port), '-w', keysFile, ...flags],
    { env: { DFN_NATS_URL: nats.url, DFN_PREFIX: prefix } },
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    () => `the gateway to be ready; output:\n${output}`,
    async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
    // A dfn process starts through tsx here: tens of seconds on a loaded two-core machine.
    90_000,
  );
  return { child, url, output: () => output, exited };
}

describe('dfn gateway under requests that never finish', { timeout: 180_000 }, () => {
  it('answers a trickling body 408 GW_REQUEST_TIMEOUT and keeps running', async () => {
    const gw = await startGateway('shutdowna', ['--create-streams', '--request-timeout', '1000']);
    try {
      const res = await slowRequest(gw.url, {
        body: batchBody(5, 'drip'),
        writeKey: 'slow_key',
        bytesPerTick: 1,
        intervalMs: 200,
      }).response;
      expect(res.status).toBe(408);
      expect(res.body.code).toBe('GW_REQUEST_TIMEOUT');
      expect(res.sent).toBeLessThan(res.total);
      expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
    } finally {
      gw.child.kill('SIGKILL');
    }
  });

  it('on SIGTERM, ends five trickling requests and one awaiting its ack after the grace period, and exits 0', async () => {
    const prefix = 'shutdownb';
    const t = topology(prefix);
    // Events of source "web" are stored; those of "held" reach a subscriber that never acknowledges
    // (a stand-in for a JetStream that does not answer), so their request stays open.
    const nc = await nats.connect();
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({
      name: t.eventsStream,
      subjects: [`${prefix}.events.web.>`],
      storage: StorageType.Memory,
    });
    const silent = nc.subscribe(`${prefix}.events.held.>`);
    const gw = await startGateway(prefix, [
      '--request-timeout',
      '120000',
      '--publish-timeout',
      '120000',
      '--shutdown-grace',
      '1500',
    ]);
    try {
      const slow = Array.from({ length: 5 }, (_, i) =>
        slowRequest(gw.url, {
          body: batchBody(5, `slow-${i}`),
          writeKey: 'slow_key',
          bytesPerTick: 1,
          intervalMs: 200,
          maxMs: 60_000,
        }),
      );
      const held = fetch(`${gw.url}/v1/track`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: basic('held_key') },
        body: JSON.stringify({ userId: 'u', event: 'E', messageId: 'held-1' }),
      });
      await waitFor('the held event to reach the silent subscriber', () => silent.getReceived() > 0);
      await waitFor('every slow request to be sending its body', () => slow.every((s) => s.bodySent() > 0));

      gw.child.kill('SIGTERM');
      // Without the grace period's end these requests would stay open for two minutes.
      const code = await Promise.race([
        gw.exited,
        new Promise<string>((r) => setTimeout(() => r('still running'), 30_000)),
      ]);
      expect(code, gw.output()).toBe(0);

      for (const res of await Promise.all(slow.map((s) => s.response))) {
        expect(res.status).toBe(503);
        expect(res.headers['retry-after']).toBe('1');
        expect(res.body.code).toBe('GW_SHUTTING_DOWN');
        expect(res.sent).toBeLessThan(res.total);
      }
      const heldRes = await held;
      expect(heldRes.status).toBe(503);
      expect(((await heldRes.json()) as { code: string }).code).toBe('GW_SHUTTING_DOWN');
      expect(gw.output()).toContain('shutdown grace period over');
    } finally {
      gw.child.kill('SIGKILL');
      silent.unsubscribe();
      await nc.close();
    }
  });

  it("while a heavy client's requests fill the budget, another key's requests as large get 200 and the heavy one 429", async () => {
    const prefix = 'drillfair';
    const t = topology(prefix);
    // "light" is stored; "held" reaches a subscriber that never acknowledges (a stand-in for a
    // JetStream that does not answer), so the heavy client's requests stay in flight.
    const nc = await nats.connect();
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({
      name: t.eventsStream,
      subjects: [`${prefix}.events.light.>`],
      storage: StorageType.Memory,
    });
    const silent = nc.subscribe(`${prefix}.events.held.>`);
    const gw = await startGateway(prefix, [
      '--max-in-flight-bytes',
      String(LIMITS.batchBytes),
      '--publish-timeout',
      '120000',
      '--shutdown-grace',
      '100',
    ]);
    try {
      const batch = (tag: string) =>
        JSON.stringify({
          batch: Array.from({ length: 20 }, (_, i) => ({
            type: 'track',
            userId: 'u',
            event: 'E',
            messageId: `${tag}-${i}`,
            properties: { pad: 'x'.repeat(1000) },
          })),
        });
      const post = (writeKey: string, body: string) =>
        fetch(`${gw.url}/v1/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: basic(writeKey) },
          body,
        });
      let refused: Response | undefined;
      for (let i = 0; !refused && i < 100; i++) {
        const before = silent.getReceived();
        refused = await answerOrHeld(
          post('held_key', batch(`heavy-${i}`)),
          () => silent.getReceived() >= before + 20,
        );
      }
      expect(refused?.status).toBe(429);
      expect(refused?.headers.get('retry-after')).toBe('1');
      for (let i = 0; i < 10; i++) {
        const light = await post('light_key', batch(`light-${i}`));
        expect(light.status).toBe(200);
        expect((await post('held_key', batch(`heavy-more-${i}`))).status).toBe(429);
      }
      expect((await jsm.streams.info(t.eventsStream)).state.messages).toBe(200);
    } finally {
      gw.child.kill('SIGKILL');
      silent.unsubscribe();
      await nc.close();
    }
  });

  it('keeps answering another client 200 while a heavy client posts large batches as fast as it can', async () => {
    const prefix = 'drillheavy';
    const nc = await nats.connect();
    const jsm = await nc.jetstreamManager();
    const t = topology(prefix);
    await jsm.streams.add({
      name: t.eventsStream,
      subjects: [`${prefix}.events.>`],
      storage: StorageType.Memory,
    });
    const gw = await startGateway(prefix, [
      '--max-in-flight-bytes',
      String(2 * 1024 * 1024),
      '--publish-timeout',
      '60000',
    ]);
    try {
      // ~1.1 MB stored per request (a 1 KB batch context in each of 1,000 events) from a 60 KB body.
      const context = { pad: 'c'.repeat(1000) };
      const heavyBody = JSON.stringify({
        batch: Array.from({ length: 1000 }, (_, i) => ({ type: 'track', userId: `u${i}`, event: 'Heavy' })),
        context,
      });
      const post = (writeKey: string, path: string, body: string) =>
        fetch(`${gw.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: basic(writeKey) },
          body,
        }).then(async (res) => ({
          status: res.status,
          retryAfter: res.headers.get('retry-after'),
          code: ((await res.json()) as { code?: string }).code,
        }));
      let heavyRunning = true;
      const heavy: Array<Awaited<ReturnType<typeof post>>> = [];
      const heavyLoops = Array.from({ length: 3 }, async () => {
        while (heavyRunning) heavy.push(await post('heavy_key', '/v1/batch', heavyBody));
      });
      await waitFor('the heavy client to be under way', () => heavy.length > 0);
      const light: number[] = [];
      for (let i = 0; i < 30; i++) {
        const body = JSON.stringify({ userId: 'u', event: 'Light', messageId: `light-${i}` });
        light.push((await post('light_key', '/v1/track', body)).status);
      }
      heavyRunning = false;
      await Promise.all(heavyLoops);

      expect(light).toEqual(light.map(() => 200));
      // The heavy client was only ever stored or told to wait.
      for (const r of heavy) {
        if (r.status === 200) continue;
        expect(r).toEqual({ status: 429, retryAfter: '1', code: 'GW_THROTTLED' });
      }
      const lightStored = (
        await jsm.streams.info(t.eventsStream, { subjects_filter: `${prefix}.events.light.>` })
      ).state.subjects;
      expect(Object.values(lightStored ?? {}).reduce((a, b) => a + b, 0)).toBe(30);
      console.log(
        `heavy client: ${heavy.filter((r) => r.status === 200).length} stored, ` +
          `${heavy.filter((r) => r.status === 429).length} throttled; light client: 30 of 30 stored`,
      );
    } finally {
      gw.child.kill('SIGKILL');
      await nc.close();
    }
  });
});
