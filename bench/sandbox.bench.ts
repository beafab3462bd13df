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

/** CPU µs per event of the last measure(): this process's threads, the isolate's included. */
let lastCpuUs = 0;

async function measure(label: string, count: number, run: () => Promise<void>): Promise<number> {
  await run(); // warm-up pass: JIT, isolate caches
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await run();
  const cpu = process.cpuUsage(cpuStart);
  const usPerEvent = ((performance.now() - start) * 1000) / count;
  // On a loaded machine wall time swings with the time slices given; CPU time is the work done.
  lastCpuUs = (cpu.user + cpu.system) / count;
  console.log(
    `${label.padEnd(48)} ${usPerEvent.toFixed(2).padStart(9)} µs/event (CPU ${lastCpuUs.toFixed(2)} µs)`,
  );
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
const sandboxCpuUs = lastCpuUs;

// (b) one event per crossing: what a naive design would pay per event.
const singleCount = Math.min(EVENTS, 5_000);
const singleUs = await measure('sandbox onTrack (one event per crossing)', singleCount, async () => {
  for (const event of events.slice(0, singleCount)) await sandbox.invoke([event]);
});
const singleCpuUs = lastCpuUs;

// (c) onBatch of 100.
const batchUs = await measure('sandbox onBatch (100 events per call)', EVENTS, async () => {
  for (const batch of batches) {
    const report = await sandbox.invokeBatch(batch);
    if (report.outcome.outcome !== 'success') throw new Error('unexpected failure');
  }
});
const batchCpuUs = lastCpuUs;
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
    sandbox_cpu_us_per_event: Number(sandboxCpuUs.toFixed(3)),
    sandbox_single_call_cpu_us_per_event: Number(singleCpuUs.toFixed(3)),
    sandbox_batch_cpu_us_per_event: Number(batchCpuUs.toFixed(3)),
    supervised_us_per_event: Number(supervisedUs.toFixed(3)),
    supervised_batch_us_per_event: Number(supervisedBatchUs.toFixed(3)),
    plain_us_per_event: Number(plainUs.toFixed(3)),
    plain_with_json_decode_us_per_event: Number(plainDecodeUs.toFixed(3)),
  }),
);
