// A delivery record always fits what NATS takes: a failed attempt with huge logs and request traces is
// stored and read back shrunk to DELIVERY_RECORD_MAX_BYTES (or the server's max_payload, when lower),
// keeping its identity and error, the first log lines and traces that fit, and saying how many it left out.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SegmentEvent } from '../../api/events.js';
import { DELIVERY_RECORD_MAX_BYTES, type DeliveryRecord } from '../../api/jetstream.js';
import { formatDeliveryRecord } from '../../cli/commands/deliveries.js';
import {
  DeliveryRecorder,
  fitRecord,
  MAX_PENDING_RECORD_BYTES,
  RECORD_HEADROOM_BYTES,
  type RecordInput,
  readDeliveryRecords,
  recordCap,
} from '../../runner/delivery-records.js';
import { Redactor } from '../../sandbox/index.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  deliveryRecord,
  fixture,
  prepareTopology,
  publish,
  type RunnerProcess,
  RunnerWorld,
  runDfn,
  STARTUP_TIMEOUT_MS,
  TEST_INSTANCE,
  track,
  waitFor,
} from './harness.js';

const LINES = 200;
const LINE_CHARS = 5_000;
const REQUESTS = 100;
const line = (i: number) => `line ${i} ${'l'.repeat(LINE_CHARS)}`;
const MESSAGE = `gave up after ${LINES} lines: ${'m'.repeat(1_500)}`;

/** ~1 MB of logs and 100 requests with 1,500-character queries and 8 headers of 1,000 characters, then a failure. */
const FUNCTION = `
async function onTrack(event, settings) {
  for (let i = 0; i < ${LINES}; i++) console.log('line ' + i + ' ' + 'l'.repeat(${LINE_CHARS}));
  const headers = {};
  for (let h = 0; h < 8; h++) headers['x-h' + h] = 'v'.repeat(1000);
  for (let i = 0; i < ${REQUESTS}; i++) await fetch(settings.url + '/r/' + i + '?' + 'q'.repeat(1500), { headers });
  throw new Error(${JSON.stringify(MESSAGE)});
}
`;

const bytes = (record: DeliveryRecord) => Buffer.byteLength(JSON.stringify(record));

/** A runner of FUNCTION against a nats-server started with `natsArgs`, its records read back. */
function huge(natsArgs: () => string[]) {
  const world = {} as { w: RunnerWorld; runner: RunnerProcess; dir: string };
  beforeAll(async () => {
    world.w = await RunnerWorld.start(natsArgs());
    world.dir = world.w.configDir({
      functionSource: FUNCTION,
      settings: { url: world.w.dest.url },
      config: { limits: { timeoutMs: 30_000, logBytes: 2 * 1024 * 1024 } },
    });
    world.runner = world.w.startRunner(world.dir);
    await world.runner.consuming();
  }, STARTUP_TIMEOUT_MS);
  afterAll(async () => {
    await world.w?.dispose();
  });
  /** Publishes one failing event and waits for its record. */
  const recordOf = async (): Promise<DeliveryRecord> => {
    const event = track({});
    await publish(world.w.f, [event]);
    return waitFor('the delivery record', async () =>
      (await readDeliveryRecords(world.w.f.jsm, world.w.f.t, TEST_INSTANCE)).find(
        (r) => r.messageId === event.messageId,
      ),
    );
  };
  return { world, recordOf };
}

/** What a shrunk record of FUNCTION's attempt must say: its error whole, a prefix of each list, the rest counted. */
function expectShrunk(record: DeliveryRecord, cap: number): void {
  expect(bytes(record)).toBeLessThanOrEqual(cap);
  expect(record).toMatchObject({
    instance: TEST_INSTANCE,
    revision: 'rev-1',
    eventType: 'track',
    eventName: 'Order Completed',
    disposition: 'discard',
    errorType: 'BadRequest',
    message: MESSAGE,
    attempt: 1,
    batch: false,
  });
  // Neither list crowds the other out, and each keeps its first entries, in order.
  expect(record.logs.length).toBeGreaterThan(0);
  expect(record.requests.length).toBeGreaterThan(0);
  expect(record.logs).toEqual(Array.from({ length: record.logs.length }, (_, i) => line(i)));
  expect(record.logs.length + (record.logsOmitted ?? 0)).toBe(LINES);
  expect(record.logsOmitted).toBeGreaterThan(0);
  expect(record.requests.map((q) => new URL(q.url).pathname)).toEqual(
    Array.from({ length: record.requests.length }, (_, i) => `/r/${i}`),
  );
  // The sandbox traced some within its byte budget and counted the rest; the record left out some more.
  expect(record.requestsNotTraced).toBeGreaterThan(0);
  expect(record.requestsOmitted).toBeGreaterThan(0);
  expect(record.requests.length + record.requestsOmitted! + record.requestsNotTraced!).toBe(REQUESTS);
}

describe('a huge failure record, with nats-server at its default max_payload (1 MiB)', () => {
  const { world, recordOf } = huge(() => []);

  it('is stored, within DELIVERY_RECORD_MAX_BYTES, saying what it left out; dfn deliveries shows it', async () => {
    expect(world.w.nc.info?.max_payload).toBe(1024 * 1024);
    const record = await recordOf();
    expectShrunk(record, DELIVERY_RECORD_MAX_BYTES);
    // Whole, it was more than the server takes (~1 MB of logs, ~9,600 characters a traced request): as
    // it was, its publish failed and the record was lost.
    const traced = record.requests.length + record.requestsOmitted!;
    expect(LINES * LINE_CHARS + traced * 9_000).toBeGreaterThan(world.w.nc.info!.max_payload);
    const { code, stdout } = await runDfn([
      'deliveries',
      'default/crm',
      '--nats-url',
      world.w.nats.url,
      '--limit',
      '1',
    ]);
    expect(code).toBe(0);
    expect(stdout).toContain(
      `    … and ${record.logsOmitted} more log lines, left out of this record to keep it within 256 KiB (and what NATS takes)\n`,
    );
    expect(stdout).toContain(
      `    … and ${record.requestsOmitted} more traced requests, left out of this record to keep it within 256 KiB (and what NATS takes)\n`,
    );
    expect(stdout).toContain(`    … and ${record.requestsNotTraced} more requests, not traced`);
  });
});

describe('a huge failure record, with nats-server at a max_payload of 64 KiB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dfn-nats-conf-'));
  const config = join(dir, 'nats.conf');
  writeFileSync(config, 'max_payload: 65536\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const { world, recordOf } = huge(() => ['-c', config]);

  it("is stored within the server's max_payload less the headroom, saying what it left out", async () => {
    expect(world.w.nc.info?.max_payload).toBe(65_536);
    const record = await recordOf();
    expectShrunk(record, 65_536 - RECORD_HEADROOM_BYTES);
    // The cap followed the server: less than a record at the fixed maximum keeps.
    expect(bytes(record)).toBeGreaterThan(65_536 / 2);
  });
});

describe('fitRecord', () => {
  const record = deliveryRecord;
  const request = (i: number) => ({
    method: 'POST',
    url: `https://api.example.com/${i}`,
    status: 503,
    durationMs: 3,
    requestHeaders: { 'x-pad': 'p'.repeat(900) },
  });

  it('the cap: the fixed maximum, or the server max_payload less headroom when that is lower', () => {
    expect(recordCap(undefined)).toBe(DELIVERY_RECORD_MAX_BYTES);
    expect(recordCap(1024 * 1024)).toBe(DELIVERY_RECORD_MAX_BYTES);
    expect(recordCap(65_536)).toBe(65_536 - RECORD_HEADROOM_BYTES);
    expect(recordCap(100)).toBe(0);
  });

  it('leaves a record that fits as it is', () => {
    const r = record({ logs: ['a', 'b'], requests: [request(0)] });
    expect(fitRecord(r, 10_000)).toBe(JSON.stringify(r));
  });

  it('counts UTF-8 bytes, gives logs and traces half the room each, keeps prefixes, and does so every time', () => {
    const r = record({
      logs: Array.from({ length: 100 }, (_, i) => `${i} ${'🙂'.repeat(200)}`),
      requests: Array.from({ length: 100 }, (_, i) => request(i)),
    });
    const out = fitRecord(r, 20_000);
    expect(fitRecord(r, 20_000)).toBe(out);
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(20_000);
    const fitted = JSON.parse(out) as DeliveryRecord;
    expect(fitted.logs).toEqual(r.logs.slice(0, fitted.logs.length));
    expect(fitted.requests).toEqual(r.requests.slice(0, fitted.requests.length));
    expect(fitted.logs.length + fitted.logsOmitted!).toBe(100);
    expect(fitted.requests.length + fitted.requestsOmitted!).toBe(100);
    const logBytes = Buffer.byteLength(JSON.stringify(fitted.logs));
    const requestBytes = Buffer.byteLength(JSON.stringify(fitted.requests));
    expect(logBytes).toBeLessThanOrEqual(10_000);
    expect(requestBytes).toBeLessThanOrEqual(10_000);
    expect(logBytes + requestBytes).toBeGreaterThan(15_000);
  });

  it('what one list does not need goes to the other', () => {
    const r = record({ logs: ['short'], requests: Array.from({ length: 100 }, (_, i) => request(i)) });
    const fitted = JSON.parse(fitRecord(r, 20_000)) as DeliveryRecord;
    expect(fitted.logs).toEqual(['short']);
    expect(fitted).not.toHaveProperty('logsOmitted');
    expect(Buffer.byteLength(JSON.stringify(fitted.requests))).toBeGreaterThan(15_000);
  });

  it('cuts the message only when it alone does not fit, and the event name only when even the frame does not', () => {
    const long = record({ message: 'x'.repeat(5_000), logs: ['a'], requests: [request(0)] });
    const cut = JSON.parse(fitRecord(long, 2_000)) as DeliveryRecord;
    expect(Buffer.byteLength(JSON.stringify(cut))).toBeLessThanOrEqual(2_000);
    expect(cut.message).toMatch(/^x+…$/);
    expect(cut.message.length).toBeGreaterThan(1_000);
    expect(cut).toMatchObject({ logs: [], logsOmitted: 1, requests: [], requestsOmitted: 1 });
    expect(cut.eventName).toBe('Order Completed');

    const named = record({ eventName: 'n'.repeat(5_000), message: 'boom' });
    const small = JSON.parse(fitRecord(named, 2_000)) as DeliveryRecord;
    expect(Buffer.byteLength(JSON.stringify(small))).toBeLessThanOrEqual(2_000);
    expect(small.eventName).toMatch(/^n+…$/);
    expect(small).toMatchObject({ messageId: 'm-1', errorType: 'Retry', disposition: 'retry' });
  });

  it('dfn deliveries says what a shrunk record left out, and nothing of the kind for a whole one', () => {
    const shrunk = record({
      logs: [],
      logsOmitted: 3,
      requests: [request(0)],
      requestsOmitted: 1,
      requestsNotTraced: 2,
    });
    const text = formatDeliveryRecord(shrunk);
    expect(text).toContain(
      '  logs\n    … and 3 more log lines, left out of this record to keep it within 256 KiB (and what NATS takes)',
    );
    expect(text).toContain(
      '    … and 1 more traced request, left out of this record to keep it within 256 KiB (and what NATS takes)\n    … and 2 more requests, not traced',
    );
    expect(formatDeliveryRecord(record({ logs: ['a'] }))).not.toContain('left out');
  });
});

describe('records in flight', () => {
  /** A failed first attempt of `event`, as the outcome handler hands it to the recorder. */
  const failure = (event: SegmentEvent, message: string, logs: string[]): RecordInput => ({
    event,
    disposition: 'retry',
    errorType: 'Retry',
    message,
    attempt: 1,
    maxAttempts: 3,
    batch: false,
    logs,
    requests: [],
    durationMs: 5,
    publishedAt: new Date().toISOString(),
  });

  it('a burst of large failures holds at most MAX_PENDING_RECORD_BYTES of records at once: the rest are dropped, counted and logged, never the runner memory', async () => {
    const nats = await NatsServer.start();
    const nc = await nats.connect();
    try {
      const f = await fixture(nc);
      await prepareTopology(f);
      const warnings: Record<string, unknown>[] = [];
      const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
      const recorder = new DeliveryRecorder(
        f.js,
        f.t,
        { instance: TEST_INSTANCE, replica: 'runner-0', revision: 'rev-1' },
        new Redactor([]),
        log,
        () => nc.info?.max_payload,
      );
      // 200 failures in one turn (a storm: none of their publishes can have been acknowledged meanwhile),
      // each with ~1 MB of logs, so each record is shrunk to the record bound.
      const logs = Array.from({ length: 200 }, (_, i) => `line ${i} ${'l'.repeat(5_000)}`);
      const events = Array.from({ length: 200 }, () => track({}));
      for (const event of events) {
        recorder.record(failure(event, 'destination answered 503', logs));
      }
      await recorder.flush(30_000);
      const records = await readDeliveryRecords(f.jsm, f.t, TEST_INSTANCE);
      const written = records.reduce((sum, r) => sum + bytes(r), 0);
      expect(records.length).toBeGreaterThan(0);
      expect(records.length).toBeLessThan(events.length);
      expect(written).toBeLessThanOrEqual(MAX_PENDING_RECORD_BYTES);
      // As many as fit: one more record of this size would have been over the bound.
      expect(written + bytes(records[0]!)).toBeGreaterThan(MAX_PENDING_RECORD_BYTES);
      expect(records.every((r) => r.logsOmitted! > 0)).toBe(true);
      expect(warnings.map((w) => w.msg)).toContain(
        'delivery records are being dropped: too many failures at once',
      );

      // Once they are written, records are taken again, and the drops are counted in a line of their own.
      recorder.record(failure(track({}), 'after the storm', []));
      await recorder.flush(30_000);
      expect(warnings.find((w) => w.msg === 'delivery records dropped during a failure burst')).toMatchObject(
        {
          dropped: events.length - records.length,
        },
      );
      const after = await readDeliveryRecords(f.jsm, f.t, TEST_INSTANCE);
      expect(after[0]!.message).toBe('after the storm');
    } finally {
      await nc.close();
      await nats.dispose();
    }
  });
});
