// The worst containment cases through a real `dfn runner` process and nats-server: the runner survives
// each (same process, no exit), its RSS stays bounded, the benign event published right after reaches the
// destination, and what it records is redacted.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerName } from '../../api/jetstream.js';
import { readDeliveryRecords } from '../../runner/delivery-records.js';
import type { Destination } from '../helpers/destination.js';
import {
  consumerState,
  type Fixture,
  publish,
  type RunnerProcess,
  RunnerWorld,
  STARTUP_TIMEOUT_MS,
  TEST_INSTANCE,
  track,
  waitFor,
} from '../runner/harness.js';

const SECRET = 'sk_"live\\42/é';

const FUNCTION = `
async function onIdentify(event, settings) {
  await fetch(settings.url + '/benign/' + event.messageId, { method: 'POST' });
}
async function onTrack(event, settings) {
  const mode = event.properties.mode;
  if (mode === 'abort') {
    const hoard = (globalThis.hoard = []);
    for (let size = 8 << 20; size >= 4096; size >>= 1) { try { for (;;) hoard.push(new ArrayBuffer(size)); } catch {} }
    const many = await Promise.allSettled(Array.from({ length: 40 }, () => fetch(settings.url + '/big').then((r) => r.arrayBuffer())));
    const one = await fetch(settings.url + '/small');
    globalThis.hoard = undefined;
    console.log('survived', one.status, many.length);
  }
  if (mode === 'timers') {
    try { for (let i = 0; i < 150000; i++) setTimeout(() => {}, 1e9); } catch (e) { console.log(e.name); }
  }
  if (mode === 'fetches') {
    const long = settings.url + '/refused/' + 'a'.repeat(1 << 20);
    for (let i = 0; i < 3000; i++) { try { await fetch(long); } catch {} }
    await Promise.all(Array.from({ length: 3000 }, (_, i) => fetch(settings.url + '/slow/' + i)));
  }
  if (mode === 'huge-throw') throw new Error('x'.repeat(2 ** 29 - 24));
  if (mode === 'secret') {
    console.log(JSON.stringify({ key: settings.apiKey }));
    await fetch(settings.url + '/s?k=' + encodeURIComponent(settings.apiKey));
    throw new ValidationError('rejected ' + JSON.stringify(settings.apiKey) + ' ' + encodeURIComponent(settings.apiKey));
  }
}
`;

function rssMbOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB$/m);
  return line ? Number(line[1]) / 1024 : Number.NaN;
}

describe('containment through the runner process', { timeout: 180_000 }, () => {
  let w: RunnerWorld;
  let f: Fixture;
  let dest: Destination;
  let runner: RunnerProcess;
  let pid = 0;
  let baselineMb = 0;
  const big = 'b'.repeat(5 * 1024 * 1024);

  beforeAll(async () => {
    w = await RunnerWorld.start();
    ({ f, dest } = w);
    dest.respond = (req) => {
      if (req.url === '/big') return { status: 200, body: big };
      if (req.url.startsWith('/slow')) return new Promise(() => {});
      return undefined;
    };
    const dir = w.configDir({
      functionSource: FUNCTION,
      settings: { url: dest.url },
      secrets: { apiKey: SECRET },
      config: { retry: { maxAttempts: 1, delaysMs: [100], jitter: 0 }, limits: { timeoutMs: 3000 } },
    });
    runner = w.startRunner(dir);
    await runner.consuming();
    pid = runner.child.pid!;
    // Warm up: the first events load lodash, JIT, sockets.
    const warm = track({}, { type: 'identify' });
    await publish(f, [warm]);
    await waitFor('the warm-up delivery', () =>
      dest.requests.some((r) => r.url === `/benign/${warm.messageId}`),
    );
    baselineMb = rssMbOf(pid);
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await w?.dispose();
  });

  async function survives(mode: string) {
    const settled = async () => {
      const s = await consumerState(f, consumerName(TEST_INSTANCE));
      return s.pending === 0 && s.ackPending === 0;
    };
    const hostile = track({ mode });
    const benign = track({}, { type: 'identify' });
    await publish(f, [hostile]);
    // Published once the hostile one is settled, so the two never share a micro-batch (an isolate killed
    // mid-batch fails the whole batch; rerunning its events one by one is another part of containment).
    await waitFor(`the "${mode}" event to be settled`, settled, 120_000);
    await publish(f, [benign]);
    await waitFor(
      `the benign event after "${mode}" to be delivered`,
      () => dest.requests.some((r) => r.url === `/benign/${benign.messageId}`),
      120_000,
    );
    await waitFor('the benign event to be settled', settled, 120_000);
    expect(runner.exitCode).toBeUndefined();
    expect(runner.child.pid).toBe(pid);
    expect(runner.output).not.toMatch(/terminate called|catastrophic/);
    expect(rssMbOf(pid) - baselineMb).toBeLessThan(500);
    return hostile;
  }

  it('a spent ArrayBuffer budget, then 40 concurrent 5 MiB fetches and one more: no abort', async () => {
    await survives('abort');
  });

  it('150,000 long timers', async () => {
    await survives('timers');
  });

  it('3,000 fetches with 1 MB URLs, then 3,000 concurrent to a slow server', async () => {
    await survives('fetches');
  });

  it('a thrown 512 MB message', async () => {
    const hostile = await survives('huge-throw');
    const record = await waitFor('its delivery record', async () =>
      (await readDeliveryRecords(f.jsm, f.t, TEST_INSTANCE)).find((r) => r.messageId === hostile.messageId),
    );
    expect(record.errorType).toBe('BadRequest');
    expect(record.message.length).toBeLessThanOrEqual(2000);
  });

  it('a secret in escaped and encoded forms never reaches the delivery record', async () => {
    const hostile = await survives('secret');
    const record = await waitFor('its delivery record', async () =>
      (await readDeliveryRecords(f.jsm, f.t, TEST_INSTANCE)).find((r) => r.messageId === hostile.messageId),
    );
    const text = JSON.stringify(record);
    for (const form of [SECRET, JSON.stringify(SECRET).slice(1, -1), encodeURIComponent(SECRET)]) {
      expect(text).not.toContain(form);
    }
    expect(record.message).toBe('rejected "[redacted]" [redacted]');
    expect(record.logs).toEqual(['{"key":"[redacted]"}']);
    expect(record.requests[0]!.url).toBe(`${dest.url}/s?k=[redacted]`);
  });
});
