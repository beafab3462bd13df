// Per-event cost of a trivial onTrack through the sandbox, against the same function called in-process
// without a sandbox, in the same run. Last line: JSON figures.

import { performance } from 'node:perf_hooks';
import type { SegmentEvent } from '../api/events.js';
import { type FunctionSandbox, loadFunction, loadSupervisedFunction } from '../sandbox/index.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const MICRO_BATCH = 100;

const SOURCE = `
let count = 0;
async function onTrack(event, settings) {
  if (event.event) count++;
}
async function onBatch(events, settings) {
  for (const event of events) if (event.event) count++;
}`;

const events: SegmentEvent[] = Array.from({ length: EVENTS }, (_, i) => ({
  type: 'track',
  event: 'Order Completed',
  userId: `user-${i % 1000}`,
  messageId: `m-${i}`,
  properties: { orderId: `o-${i}`, revenue: i % 100, currency: 'EUR' },
  context: { library: { name: 'analytics-node', version: '3.0.0' } },
  timestamp: new Date(1_700_000_000_000 + i).toISOString(),
}));

function chunks<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

async function measure(label: string, count: number, run: () => Promise<void>): Promise<number> {
  await run(); // warm-up pass: JIT, isolate caches
  const start = performance.now();
  await run();
  const usPerEvent = ((performance.now() - start) * 1000) / count;
  console.log(`${label.padEnd(48)} ${usPerEvent.toFixed(2).padStart(9)} µs/event`);
  return usPerEvent;
}

const sandbox = await loadFunction(SOURCE, { settings: { apiKey: 'k' } });
const batches = chunks(events, MICRO_BATCH);

console.log(`${EVENTS} track events, micro-batches and onBatch of ${MICRO_BATCH}`);

const microBatches = (sb: FunctionSandbox) => async () => {
  for (const batch of batches) {
    const reports = await sb.invoke(batch);
    if (reports.some((r) => r.outcome.outcome !== 'success')) throw new Error('unexpected failure');
  }
};

// (a) the runner's path for single-event handlers: one boundary crossing per micro-batch.
const sandboxUs = await measure('sandbox onTrack (micro-batches of 100)', EVENTS, microBatches(sandbox));

// (b) one event per crossing: what a naive design would pay per event.
const singleCount = Math.min(EVENTS, 5_000);
const singleUs = await measure('sandbox onTrack (one event per crossing)', singleCount, async () => {
  for (const event of events.slice(0, singleCount)) await sandbox.invoke([event]);
});

// (c) onBatch of 100.
const batchUs = await measure('sandbox onBatch (100 events per call)', EVENTS, async () => {
  for (const batch of batches) {
    const report = await sandbox.invokeBatch(batch);
    if (report.outcome.outcome !== 'success') throw new Error('unexpected failure');
  }
});
sandbox.dispose();

// (e) the same through a supervised sandbox process (what the runner uses): one IPC message per micro-batch.
const supervised = await loadSupervisedFunction(SOURCE, { settings: { apiKey: 'k' } });
const supervisedUs = await measure(
  'supervised onTrack (micro-batches of 100)',
  EVENTS,
  microBatches(supervised),
);
const supervisedBatchUs = await measure('supervised onBatch (100 events per call)', EVENTS, async () => {
  for (const batch of batches) {
    const report = await supervised.invokeBatch(batch);
    if (report.outcome.outcome !== 'success') throw new Error('unexpected failure');
  }
});
supervised.dispose();

// (f) cold start: loading a function into a new isolate and its first event, and the isolate's heap
// then, for a function that uses none of Segment's libraries and for one that uses jsonwebtoken and
// moment (evaluated on first use). The ceiling: the no-dependency case, which must stay where it was.
const STARTS = Number(process.env.BENCH_STARTS ?? 30);
const NO_DEPS = `async function onTrack(event, settings) { if (!event.event) throw new Error('no event'); }`;
const WITH_DEPS = `async function onTrack(event, settings) {
  const token = jsonwebtoken.sign({ sub: event.userId }, settings.apiKey, { expiresIn: '1h' });
  const at = moment.tz(event.timestamp, 'America/New_York').format();
  if (!token || !at) throw new Error('no token');
}`;

async function coldStarts(label: string, source: string): Promise<{ ms: number; heapMb: number }> {
  let totalMs = 0;
  let heap = 0;
  for (let i = 0; i <= STARTS; i++) {
    const start = performance.now();
    const sb = await loadFunction(source, { settings: { apiKey: 'k' } });
    const [report] = await sb.invoke([events[i % events.length]!]);
    const ms = performance.now() - start;
    if (report!.outcome.outcome !== 'success')
      throw new Error(`unexpected failure: ${JSON.stringify(report)}`);
    if (i > 0) {
      // the first load warms the host (bundles read, JIT); the rest are measured
      totalMs += ms;
      heap += (await sb.heapBytes?.()) ?? 0;
    }
    sb.dispose();
  }
  const ms = totalMs / STARTS;
  const heapMb = heap / STARTS / 1024 / 1024;
  console.log(
    `${label.padEnd(48)} ${ms.toFixed(2).padStart(9)} ms/start ${heapMb.toFixed(2).padStart(7)} MiB heap`,
  );
  return { ms, heapMb };
}

const noDeps = await coldStarts('cold start, no dependencies', NO_DEPS);
const withDeps = await coldStarts('cold start, jsonwebtoken + moment', WITH_DEPS);
const noDepsAgain = await coldStarts('cold start, no dependencies (again)', NO_DEPS);

// (d) the ceiling: the same handler as a plain in-process function, each event awaited.
const plain = new Function(`${SOURCE}; return { onTrack, onBatch };`)() as {
  onTrack: (e: SegmentEvent, s: unknown) => Promise<void>;
};
const settings = { apiKey: 'k' };
const plainUs = await measure('plain in-process onTrack (no sandbox)', EVENTS, async () => {
  for (const event of events) await plain.onTrack(event, settings);
});
// For scale: a plain call that also decodes each event from JSON, as any consumer of a stream must.
const plainDecodeUs = await measure('plain in-process onTrack + JSON decode', EVENTS, async () => {
  for (const event of events) await plain.onTrack(JSON.parse(JSON.stringify(event)), settings);
});

console.log(
  JSON.stringify({
    sandbox_us_per_event: Number(sandboxUs.toFixed(3)),
    sandbox_single_call_us_per_event: Number(singleUs.toFixed(3)),
    sandbox_batch_us_per_event: Number(batchUs.toFixed(3)),
    supervised_us_per_event: Number(supervisedUs.toFixed(3)),
    supervised_batch_us_per_event: Number(supervisedBatchUs.toFixed(3)),
    plain_us_per_event: Number(plainUs.toFixed(3)),
    plain_with_json_decode_us_per_event: Number(plainDecodeUs.toFixed(3)),
    cold_start_no_deps_ms: Number(((noDeps.ms + noDepsAgain.ms) / 2).toFixed(3)),
    cold_start_no_deps_heap_mb: Number(((noDeps.heapMb + noDepsAgain.heapMb) / 2).toFixed(3)),
    cold_start_jwt_moment_ms: Number(withDeps.ms.toFixed(3)),
    cold_start_jwt_moment_heap_mb: Number(withDeps.heapMb.toFixed(3)),
  }),
);
