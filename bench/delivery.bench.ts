// The delivery tracker at the operator benchmark's scale, against its ceiling in the same run: 500 instances
// with 2 runner replicas each (their stats made up here: no runner processes, a stand-in said so), on a real
// nats-server with every instance's consumers. Measured: stats messages the tracker takes per second against a
// bare subscriber that only parses them (the ceiling), one poll of all backlogs and retry counts, and the
// changes reported while unchanged stats keep arriving (must be 0: each would be a status write).
// The last line is JSON: {"instances":…, "raw_msgs_per_s":…, "tracker_msgs_per_s":…, "ratio":…, "poll_ms":…,
// "idle_changes":…}.

import { performance } from 'node:perf_hooks';
import type { NatsConnection } from 'nats';
import { Registry } from 'prom-client';
import {
  ensureInstanceConsumer,
  ensureStreams,
  type InstanceRef,
  type RunnerStats,
  statsSubject,
  statsWildcard,
  topology,
} from '../api/jetstream.js';
import { silentProcessLogger } from '../lib/telemetry.js';
import { DeliveryTracker, type InstanceDelivery } from '../operator/delivery/index.js';
import { waitingCounts } from '../operator/delivery/waiting-counts.js';
import { NatsServer } from '../test/helpers/nats-server.js';

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 500);
const REPLICAS = 2;
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 40_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Unchanged stats for every process this often, for this long (the operator benchmark: every 5 s for 60 s). */
const IDLE_INTERVAL_MS = Number(process.env.BENCH_IDLE_INTERVAL_MS ?? 1000);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 10_000);

const t = topology('bench');
const instances: InstanceRef[] = Array.from({ length: INSTANCES }, (_, i) => ({
  namespace: `team-${i % 10}`,
  name: `fi-${i}`,
}));
const started = new Date(Date.now() - 3_600_000).toISOString(); // runners up for an hour already

/** The n-th stats message of one made-up process: its counters grow with n. */
function stats(ref: InstanceRef, replica: number, n: number): Uint8Array {
  const s: RunnerStats = {
    instance: ref,
    replica: `${ref.name}-${replica}`,
    revision: 'abc123',
    startedAt: started,
    at: new Date().toISOString(),
    inFlight: 0,
    counters: {
      received: n * 12,
      delivered: n * 10,
      filtered: n,
      retried: n,
      discarded: { BadRequest: 0 },
      deadLettered: 0,
      released: 0,
      deadLetteredFromAdvisory: 0,
      invocations: n * 10,
      executionMs: n * 40,
    },
  };
  return new TextEncoder().encode(JSON.stringify(s));
}

/** MESSAGES stats messages, round-robin over every process, each process's counters growing. */
function messages(round: number): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  for (let i = 0; i < MESSAGES; i++) {
    const process = i % (INSTANCES * REPLICAS);
    const ref = instances[Math.floor(process / REPLICAS)]!;
    out.push([statsSubject(t, ref), stats(ref, process % REPLICAS, round * MESSAGES + i + 1)]);
  }
  return out;
}

async function publishAll(nc: NatsConnection, batch: Array<[string, Uint8Array]>): Promise<void> {
  for (let i = 0; i < batch.length; i++) {
    const [subject, data] = batch[i]!;
    nc.publish(subject, data);
    if (i % 2000 === 1999) await nc.flush();
  }
  await nc.flush();
}

/** Seconds until `received()` reaches `count` after publishing `batch` from another connection. */
async function timeToReceive(
  pub: NatsConnection,
  batch: Array<[string, Uint8Array]>,
  received: () => number,
): Promise<number> {
  const target = received() + batch.length;
  const start = performance.now();
  await publishAll(pub, batch);
  while (received() < target) {
    if (performance.now() - start > 120_000) throw new Error(`only ${received()} of ${target} received`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return (performance.now() - start) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const server = await NatsServer.start();
  const nc = await server.connect();
  const pub = await server.connect();
  try {
    const jsm = await nc.jetstreamManager();
    await ensureStreams(jsm, t, { storage: 'memory' });
    for (const ref of instances) await ensureInstanceConsumer(jsm, t, { ...ref, source: ref.name });

    // The ceiling: a subscriber that only parses, on its own prefix (same messages, subjects the tracker does
    // not hear), so the two phases can alternate round by round while the tracker keeps running.
    const rawPrefix = topology('rawbench');
    let parsed = 0;
    nc.subscribe(statsWildcard(rawPrefix), {
      callback: (_e, m) => {
        JSON.parse(new TextDecoder().decode(m.data));
        parsed++;
      },
    });

    let changes = 0;
    const tracker = new DeliveryTracker({
      nc,
      jsm,
      topology: t,
      log: silentProcessLogger(),
      onChange: () => changes++,
    });
    const registry = new Registry();
    tracker.registerMetrics(registry);
    let accepted = 0;
    const readAccepted = async () => {
      const m = await registry.getSingleMetric('dfn_operator_runner_stats_messages_total')?.get();
      accepted = m?.values.find((v) => v.labels.result === 'accepted')?.value ?? 0;
    };
    const poller = setInterval(() => void readAccepted(), 5);
    const empty: InstanceDelivery = { delivered: 0, retrying: 0, failed: 0, deadLettered: 0, filtered: 0 };
    for (const ref of instances) tracker.seed(ref, empty);
    await tracker.start();
    await nc.flush();

    const rawRates: number[] = [];
    const trackerRates: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const batch = messages(round);
      const rawBatch = batch.map(([subject, data]): [string, Uint8Array] => [
        `rawbench${subject.slice(5)}`,
        data,
      ]);
      rawRates.push(MESSAGES / (await timeToReceive(pub, rawBatch, () => parsed)));
      trackerRates.push(MESSAGES / (await timeToReceive(pub, batch, () => accepted)));
    }

    const pollStart = performance.now();
    const counts = await waitingCounts(jsm, t);
    const pollMs = performance.now() - pollStart;
    if (counts.backlog.size < INSTANCES) throw new Error(`listed ${counts.backlog.size} instance consumers`);

    // Idle: every process reports once more (one step on), then the same counters again and again, each
    // message with a fresh `at` as runners send them. Settled first (debounce), then every change counts.
    const finalN = ROUNDS * MESSAGES + 1;
    const unchanged = () =>
      instances.flatMap((ref) =>
        Array.from({ length: REPLICAS }, (_, r): [string, Uint8Array] => [
          statsSubject(t, ref),
          stats(ref, r, finalN),
        ]),
      );
    await timeToReceive(pub, unchanged(), () => accepted);
    await new Promise((r) => setTimeout(r, 1000));
    const idleFrom = changes;
    const idleStart = performance.now();
    let idleMessages = 0;
    while (performance.now() - idleStart < IDLE_MS) {
      const batch = unchanged();
      await timeToReceive(pub, batch, () => accepted);
      idleMessages += batch.length;
      await new Promise((r) => setTimeout(r, IDLE_INTERVAL_MS));
    }
    const idleChanges = changes - idleFrom;
    clearInterval(poller);
    await tracker.stop();

    const rawRate = median(rawRates);
    const trackerRate = median(trackerRates);
    console.log(
      `instances ${INSTANCES} x ${REPLICAS} replicas, ${MESSAGES} stats messages per round, ${ROUNDS} rounds`,
    );
    console.log(`bare subscriber (JSON.parse only): ${rawRates.map((r) => Math.round(r)).join(', ')} msg/s`);
    console.log(
      `delivery tracker:                  ${trackerRates.map((r) => Math.round(r)).join(', ')} msg/s`,
    );
    console.log(
      `one poll of ${counts.backlog.size} + ${counts.retrying.size} consumers: ${pollMs.toFixed(1)} ms`,
    );
    console.log(
      `idle: ${idleMessages} unchanged stats messages over ${IDLE_MS / 1000} s, ${idleChanges} changes`,
    );
    console.log(
      `(the operator benchmark's load is ${INSTANCES * REPLICAS} processes / 5 s = ${(INSTANCES * REPLICAS) / 5} msg/s)`,
    );
    console.log(
      JSON.stringify({
        instances: INSTANCES,
        raw_msgs_per_s: Math.round(rawRate),
        tracker_msgs_per_s: Math.round(trackerRate),
        ratio: Number((trackerRate / rawRate).toFixed(3)),
        poll_ms: Number(pollMs.toFixed(1)),
        idle_changes: idleChanges,
      }),
    );
    if (idleChanges !== 0) process.exitCode = 1;
  } finally {
    await pub.close();
    await nc.close();
    await server.dispose();
  }
}

await main();
