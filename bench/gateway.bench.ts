// Gateway throughput against raw JetStream publishing, in one run: the same events published from one
// client with nats.js's js.publish (the baseline) and with the gateway's own publisher (its ceiling
// without HTTP), then POSTed through /v1/batch (100 per request) by a second process over keep-alive
// HTTP. The three phases run back to back in several rounds; the round with the median ratio counts.
// The last line is JSON: {"raw_publish_eps":…, "gateway_eps":…, "ratio":…} (ratio = gateway / js.publish).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { ensureStreams, eventSubject, topology } from '../api/jetstream.js';
import { JetStreamPublisher } from '../gateway/jetstream-publisher.js';
import { eventMsgId } from '../gateway/publish.js';
import { createGateway } from '../gateway/server.js';
import { NatsServer } from '../test/helpers/nats-server.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 60_000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 10_000);
/** Rounds of the three phases back to back; the median round counts (this box's load comes and goes). */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const BATCH = 100;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
/** Raw publishes kept in flight: as many as the gateway holds with CONNECTIONS requests of BATCH events. */
const RAW_WINDOW = CONNECTIONS * BATCH;
const WRITE_KEY = 'bench_write_key';
const SOURCE = 'bench';

/** The i-th event: a realistic server-side track call (~450 bytes), identical in both processes. */
function event(i: number): Record<string, unknown> {
  return {
    type: 'track',
    messageId: `bench-${i}`,
    userId: `user-${i % 5000}`,
    event: 'Order Completed',
    timestamp: new Date(Date.UTC(2024, 0, 1) + i).toISOString(),
    properties: {
      orderId: `o-${i}`,
      total: (i % 1000) + 0.99,
      currency: 'EUR',
      coupon: i % 7 === 0 ? 'SPRING' : null,
    },
    context: {
      library: { name: '@segment/analytics-node', version: '3.1.0' },
      ip: '203.0.113.7',
      userAgent:
        'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
    },
    integrations: {},
  };
}

// ---- the load generator: a separate process, so HTTP client work does not share the gateway's thread ----

async function loadGenerator(url: string, from: number, count: number): Promise<void> {
  const bodies: Buffer[] = [];
  for (let start = from; start < from + count; start += BATCH) {
    const batch = [];
    for (let i = start; i < Math.min(start + BATCH, from + count); i++) batch.push(event(i));
    bodies.push(Buffer.from(JSON.stringify({ batch, sentAt: new Date().toISOString() })));
  }
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const auth = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`;
  const post = (body: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        `${url}/v1/batch`,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', authorization: auth, 'content-length': body.length },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}: ${text}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < bodies.length) await post(bodies[next++]!);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  process.stdout.write(`${JSON.stringify({ events: count, seconds })}\n`);
}

function runLoad(url: string, from: number, count: number): Promise<{ events: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, new URL(import.meta.url).pathname, '--load', url, String(from), String(count)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!));
    });
  });
}

// ---- raw JetStream publishing: one client, async, a window of publishes in flight ----

type Publish = (subject: string, data: Uint8Array, msgId: string) => Promise<unknown>;

async function rawPublish(publish: Publish, subject: string, from: number, count: number): Promise<number> {
  // Serialized up front: the raw client publishes bytes it already has, like an ideal producer.
  const payloads = Array.from({ length: count }, (_, k) => {
    const e = event(from + k);
    return { data: Buffer.from(JSON.stringify(e)), msgId: eventMsgId(SOURCE, e.messageId as string) };
  });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: RAW_WINDOW }, async () => {
      while (next < payloads.length) {
        const p = payloads[next++]!;
        await publish(subject, p.data, p.msgId);
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

async function streamCount(nc: NatsConnection, stream: string): Promise<number> {
  return (await (await nc.jetstreamManager()).streams.info(stream)).state.messages;
}

/** Runs one measured phase, checks every event was stored, and empties the stream for the next. */
async function measured(nc: NatsConnection, stream: string, run: () => Promise<number>): Promise<number> {
  const seconds = await run();
  const stored = await streamCount(nc, stream);
  if (stored !== EVENTS) throw new Error(`${stream}: ${stored} events stored, expected ${EVENTS}`);
  await (await nc.jetstreamManager()).streams.purge(stream);
  return EVENTS / seconds;
}

async function main(): Promise<void> {
  const nats = await NatsServer.start();
  const dir = mkdtempSync(join(tmpdir(), 'dfn-bench-gateway-'));
  try {
    // The same client options as the gateway's connection: the raw baseline must not pay for what the
    // gateway does not (an Error with stack per request, noAsyncTraces off).
    const nc = await connect({ servers: nats.url, noAsyncTraces: true });
    const jsm = await nc.jetstreamManager();
    const stockT = topology('benchraw');
    const leanT = topology('benchlean');
    const gwT = topology('benchgw');
    // File storage, as in production: the stream's write path is part of the ceiling.
    for (const t of [stockT, leanT, gwT]) await ensureStreams(jsm, t);

    console.log(`gateway benchmark: ${EVENTS} events per phase, ${ROUNDS} rounds, /v1/batch of ${BATCH}`);
    console.log(
      `  gateway load: a second process, ${CONNECTIONS} keep-alive connections; raw: one client, ` +
        `${RAW_WINDOW} publishes in flight`,
    );

    const js = nc.jetstream();
    const stock: Publish = (subject, data, msgId) => js.publish(subject, data, { msgID: msgId });
    const leanPublisher = new JetStreamPublisher(nc, 30_000);
    const lean: Publish = (subject, data, msgId) => leanPublisher.publish(subject, data, msgId);

    const keys = join(dir, 'write-keys.yaml');
    writeFileSync(keys, `${WRITE_KEY}: ${SOURCE}\n`);
    const gateway = await createGateway({ writeKeysFile: keys, natsUrl: nats.url, prefix: gwT.prefix });
    const url = await gateway.listen(0, '127.0.0.1');
    await gateway.link.connected();

    // Warm-up (JIT, connections, stream files), not measured.
    await rawPublish(stock, eventSubject(stockT, SOURCE, 'track'), -WARMUP, WARMUP);
    await rawPublish(lean, eventSubject(leanT, SOURCE, 'track'), -WARMUP, WARMUP);
    await runLoad(url, -WARMUP, WARMUP);
    for (const t of [stockT, leanT, gwT]) await jsm.streams.purge(t.eventsStream);

    const rounds: Array<{ stock: number; lean: number; gateway: number }> = [];
    for (let round = 0; round < ROUNDS; round++) {
      const from = round * EVENTS;
      const stockEps = await measured(nc, stockT.eventsStream, () =>
        rawPublish(stock, eventSubject(stockT, SOURCE, 'track'), from, EVENTS),
      );
      const leanEps = await measured(nc, leanT.eventsStream, () =>
        rawPublish(lean, eventSubject(leanT, SOURCE, 'track'), from, EVENTS),
      );
      const gatewayEps = await measured(
        nc,
        gwT.eventsStream,
        async () => (await runLoad(url, from, EVENTS)).seconds,
      );
      rounds.push({ stock: stockEps, lean: leanEps, gateway: gatewayEps });
      console.log(
        `  round ${round + 1}: raw js.publish ${stockEps.toFixed(0)}/s, ` +
          `raw (gateway's publisher) ${leanEps.toFixed(0)}/s, gateway ${gatewayEps.toFixed(0)}/s, ` +
          `ratio ${(gatewayEps / stockEps).toFixed(2)}`,
      );
    }
    await gateway.close();
    leanPublisher.close();
    await nc.close();

    // The round with the median ratio: each round's phases ran back to back under the same load, so
    // its figures belong together (the best of each phase could come from different load conditions).
    const sorted = [...rounds].sort((a, b) => a.gateway / a.stock - b.gateway / b.stock);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    const ratio = median.gateway / median.stock;
    console.log(`median round (by ratio):`);
    console.log(`  raw JetStream publish (nats.js js.publish, async): ${median.stock.toFixed(0)} events/s`);
    console.log(`  raw with the gateway's ack-correlating publisher:   ${median.lean.toFixed(0)} events/s`);
    console.log(
      `  through the gateway (/v1/batch over HTTP):          ${median.gateway.toFixed(0)} events/s`,
    );
    console.log(
      `  ratio gateway/raw: ${ratio.toFixed(2)}  (gateway / its own publisher without HTTP: ` +
        `${(median.gateway / median.lean).toFixed(2)})`,
    );
    console.log(
      JSON.stringify({
        raw_publish_eps: Math.round(median.stock),
        gateway_eps: Math.round(median.gateway),
        ratio: Math.round(ratio * 100) / 100,
      }),
    );
  } finally {
    await nats.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--load') {
  await loadGenerator(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
} else {
  await main();
}
