// Per-event cost of a trivial onTrack through the sandbox, against the same function called in-process
// without a sandbox, in the same run; and what starting a function costs (time, heap) against a bare isolate,
// for one using none of Segment's libraries and one using jsonwebtoken + moment. Last line: JSON figures.

import { performance } from 'node:perf_hooks';
import ivm from 'isolated-vm';
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

const STARTS = Number(process.env.BENCH_STARTS ?? 15);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** What an isolate holds on its heap and outside it (ArrayBuffers), in MiB. */
const heapMib = (isolate: ivm.Isolate) => {
  const h = isolate.getHeapStatisticsSync();
  return (h.used_heap_size + h.externally_allocated_size) / 2 ** 20;
};

/**
 * Median start-up (ms), its CPU time (ms, this process's threads, the isolate's included: what a loaded
 * machine does not distort) and heap after it (MiB) of `start`, over STARTS runs (plus one warm-up).
 */
async function startup(label: string, start: () => Promise<{ heapMib(): Promise<number>; dispose(): void }>) {
  const times: number[] = [];
  const cpus: number[] = [];
  const heaps: number[] = [];
  for (let i = 0; i <= STARTS; i++) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const started = await start();
    const cpu = process.cpuUsage(cpu0);
    const ms = performance.now() - t0;
    if (i > 0) {
      times.push(ms);
      cpus.push((cpu.user + cpu.system) / 1000);
      heaps.push(await started.heapMib());
    }
    started.dispose();
  }
  const figures = { ms: median(times), cpuMs: median(cpus), mib: median(heaps) };
  console.log(
    `${label.padEnd(48)} ${figures.ms.toFixed(2).padStart(9)} ms (CPU ${figures.cpuMs.toFixed(2)} ms) ${figures.mib.toFixed(2).padStart(7)} MiB`,
  );
  return figures;
}

// The in-process figures first, in the order they have always run, so that the sandbox and its ceiling are
// measured in the same state of this process (the start-ups below leave many disposed isolates behind).
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

console.log(`isolate start-up, median of ${STARTS}`);
// (f) the ceiling: a bare isolate and context, nothing evaluated in it.
const bare = await startup('bare isolate + context', async () => {
  const isolate = new ivm.Isolate({ memoryLimit: 128 });
  await isolate.createContext();
  return { heapMib: async () => heapMib(isolate), dispose: () => isolate.dispose() };
});
// (g) a function using none of Segment's dependencies (the prelude and the function), loaded and given its
// first event; (h) one using jsonwebtoken + moment, whose first event evaluates both libraries; (i) one
// using lodash (`_`), which its first event evaluates.
const NO_DEPS = `async function onTrack(event, settings) { if (!event.event) throw new Error('no event'); }`;
const WITH_DEPS = `async function onTrack(event, settings) {
  const token = jsonwebtoken.sign({ sub: event.userId }, settings.apiKey, { expiresIn: '1h' });
  const at = moment.tz(event.timestamp, 'America/New_York').format();
  if (!token || !at) throw new Error('no token');
}`;
const WITH_LODASH = `async function onTrack(event, settings) {
  if (!_.get(event, 'properties.orderId')) throw new Error('no order');
}`;
const firstEvent = (source: string) => async () => {
  const sb = await loadFunction(source, { settings: { apiKey: 'k' } });
  const [report] = await sb.invoke([events[0]!]);
  if (report!.outcome.outcome !== 'success') throw new Error(`unexpected failure: ${JSON.stringify(report)}`);
  return { heapMib: async () => ((await sb.heapBytes?.()) ?? 0) / 2 ** 20, dispose: () => sb.dispose() };
};
const fn = await startup('function, no dependencies: load + first event', firstEvent(NO_DEPS));
const withDeps = await startup('function, jsonwebtoken + moment: load + first event', firstEvent(WITH_DEPS));
const withLodash = await startup('function, lodash: load + first event', firstEvent(WITH_LODASH));

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
    startup_bare_isolate_ms: Number(bare.ms.toFixed(2)),
    startup_bare_isolate_mib: Number(bare.mib.toFixed(2)),
    startup_function_ms: Number(fn.ms.toFixed(2)),
    startup_function_cpu_ms: Number(fn.cpuMs.toFixed(2)),
    startup_function_mib: Number(fn.mib.toFixed(2)),
    startup_jwt_moment_ms: Number(withDeps.ms.toFixed(2)),
    startup_jwt_moment_mib: Number(withDeps.mib.toFixed(2)),
    startup_jwt_moment_cpu_ms: Number(withDeps.cpuMs.toFixed(2)),
    startup_lodash_ms: Number(withLodash.ms.toFixed(2)),
    startup_lodash_cpu_ms: Number(withLodash.cpuMs.toFixed(2)),
    startup_lodash_mib: Number(withLodash.mib.toFixed(2)),
  }),
);
