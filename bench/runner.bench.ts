// Runner throughput against raw JetStream, same stream, same run: (a) a bare consume+ack loop, (b) the runner
// with a trivial onTrack, (c) the runner with onBatch of 100. The last line is JSON for CI to read.

import { AckPolicy, DeliverPolicy, type NatsConnection } from 'nats';
import {
  ensureInstanceConsumer,
  ensureStreams,
  eventSubject,
  type InstanceRef,
  topology,
} from '../api/jetstream.js';
import { parseRunnerConfig } from '../api/runner-config.js';
import type { LoadedRunnerConfig } from '../runner/config-loader.js';
import { silentLogger } from '../runner/log.js';
import { Runner } from '../runner/runner.js';
import { NatsServer } from '../test/helpers/nats-server.js';

const N = Number(process.env.BENCH_EVENTS ?? 100_000);
const MAX_ACK_PENDING = 1000;
const SOURCE = 'bench';
const t = topology('dfn');

function event(i: number) {
  return {
    type: 'track',
    event: 'Order Completed',
    userId: `user-${i % 1000}`,
    messageId: `bench-${i}`,
    timestamp: new Date().toISOString(),
    properties: { orderId: `o-${i}`, total: 42.5, currency: 'EUR', items: [{ sku: 'sku-1', qty: 2 }] },
    context: { library: { name: 'analytics-node', version: '3.0.0' }, ip: '10.0.0.1' },
  };
}

async function publishAll(nc: NatsConnection): Promise<number> {
  const js = nc.jetstream();
  const subject = eventSubject(t, SOURCE, 'track');
  const started = performance.now();
  let pending: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    pending.push(js.publish(subject, JSON.stringify(event(i)), { msgID: `bench-${i}` }));
    if (pending.length === 2000) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
  return N / ((performance.now() - started) / 1000);
}

async function rawConsume(nc: NatsConnection, durable: string): Promise<number> {
  const consumer = await nc.jetstream().consumers.get(t.eventsStream, durable);
  const started = performance.now();
  const messages = await consumer.consume({ max_messages: MAX_ACK_PENDING });
  let n = 0;
  for await (const m of messages) {
    JSON.parse(new TextDecoder().decode(m.data));
    m.ack();
    if (++n === N) break;
  }
  await nc.flush();
  return N / ((performance.now() - started) / 1000);
}

function runnerConfig(
  url: string,
  instance: InstanceRef,
  source: string,
  batching: boolean,
): LoadedRunnerConfig {
  return {
    dir: '(bench)',
    config: parseRunnerConfig({
      apiVersion: 'dfn.dev/v1alpha1',
      kind: 'RunnerConfig',
      instance: { ...instance, source: SOURCE },
      function: { revision: 'bench' },
      nats: { url },
      limits: { concurrency: MAX_ACK_PENDING },
      batching: { enabled: batching, maxSize: 100, maxWaitMs: 1000 },
      stats: { intervalMs: 60_000 },
    }),
    source,
    settings: {},
    sensitiveKeys: [],
    sensitiveValues: [],
    natsAuth: {},
  };
}

async function runnerConsume(
  url: string,
  instance: InstanceRef,
  source: string,
  batching: boolean,
): Promise<number> {
  const runner = await Runner.load(runnerConfig(url, instance, source, batching), {
    log: silentLogger,
    replica: 'bench',
  });
  const started = performance.now();
  await runner.start();
  while (runner.stats.counters.delivered < N) {
    if (runner.stats.counters.received > runner.stats.counters.delivered + MAX_ACK_PENDING + 1) {
      throw new Error(`runner failed events: ${JSON.stringify(runner.stats.counters)}`);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const eps = N / ((performance.now() - started) / 1000);
  await runner.stop();
  const c = runner.stats.counters;
  if (c.delivered !== N || c.retried || c.deadLettered)
    throw new Error(`unexpected counters: ${JSON.stringify(c)}`);
  return eps;
}

const nats = await NatsServer.start();
try {
  const nc = await nats.connect();
  const jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, t);
  // All three consumers exist before the events are published, so each sees the same N events.
  const [warmupDurable, rawDurable] = ['bench_warmup', 'bench_raw'];
  for (const durable_name of [warmupDurable, rawDurable]) {
    await jsm.consumers.add(t.eventsStream, {
      durable_name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      max_ack_pending: MAX_ACK_PENDING,
      filter_subject: `${t.prefix}.events.${SOURCE}.*`,
    });
  }
  const single: InstanceRef = { namespace: 'bench', name: 'single' };
  const batch: InstanceRef = { namespace: 'bench', name: 'batch' };
  for (const ref of [single, batch]) {
    await ensureInstanceConsumer(jsm, t, { ...ref, source: SOURCE, maxAckPending: MAX_ACK_PENDING });
  }

  const publishEps = await publishAll(nc);
  console.log(`published ${N} events: ${Math.round(publishEps)} events/s`);

  // A first, untimed pass warms the JIT and nats-server's cache of the stream, so (a) is not handicapped.
  await rawConsume(nc, warmupDurable);
  const raw = await rawConsume(nc, rawDurable);
  console.log(`(a) raw JetStream consume+ack:       ${Math.round(raw)} events/s`);
  const runner = await runnerConsume(nats.url, single, 'async function onTrack(event, settings) {}', false);
  console.log(
    `(b) runner, trivial onTrack:         ${Math.round(runner)} events/s (${(runner / raw).toFixed(2)} of raw)`,
  );
  const runnerBatch = await runnerConsume(
    nats.url,
    batch,
    'async function onBatch(events, settings) {}\nasync function onTrack(event, settings) {}',
    true,
  );
  console.log(
    `(c) runner, onBatch of 100:          ${Math.round(runnerBatch)} events/s (${(runnerBatch / raw).toFixed(2)} of raw)`,
  );
  await nc.close();
  console.log(
    JSON.stringify({
      raw_eps: Math.round(raw),
      runner_eps: Math.round(runner),
      runner_batch_eps: Math.round(runnerBatch),
      ratio: Number((runner / raw).toFixed(3)),
      ratio_batch: Number((runnerBatch / raw).toFixed(3)),
    }),
  );
} finally {
  await nats.dispose();
}
