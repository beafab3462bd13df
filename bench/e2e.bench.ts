// End to end, each hop its own process on 127.0.0.1: single-event /v1/track requests at a fixed rate →
// `dfn gateway` → nats-server (JetStream, file storage) → `dfn runner` (onTrack does one fetch) → a
// destination. Measures per-event latency from the request sent to the destination receiving the event,
// the gateway's response time, delivered vs sent, and whether a backlog builds on the consumer. Its
// ceiling, in the same run: the same load sent straight to the destination (one hop instead of four).
// Flags: --rate <events/s> (1000), --duration <s> (60), --ceiling-duration <s> (the duration),
// --profile <dir> (CPU profiles of the gateway and the runner, written there when they stop).
// The gateway and the runner run from the build in dist/ (`npm run bench:e2e` builds first), as the image
// ships them.
// The last line is JSON: {"rate":…, "p50_ms":…, "p99_ms":…, "gateway_p99_ms":…, "delivered":…, "sent":…, …}.

import { type ChildProcess, fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { parseArgs } from 'node:util';
import { consumerName, topology } from '../api/jetstream.js';
import { GatewayProcess } from '../test/helpers/gateway-process.js';
import { NatsServer } from '../test/helpers/nats-server.js';
import { RunnerProcess, removeDir, writeConfigDir } from '../test/runner/harness.js';
import { machineLine, machineShare, machineTicks } from './machine.js';

const WRITE_KEY = 'e2e_bench_key';
const SOURCE = 'web';
const INSTANCE = { namespace: 'bench', name: 'e2e' };
/**
 * Keep-alive connections the load generator may open: one per request in flight, so requests go out at
 * their time however slow the answers (open loop). Past it a request waits for a connection, and that
 * wait counts as the generator being late, not as the system's latency.
 */
const MAX_CONNECTIONS = 1024;
/** After the last request, how long delivery may take to catch up before what is missing counts as lost. */
const DRAIN_MS = 30_000;

/**
 * The function under test: one request per event to the destination, its answer read, as a webhook
 * destination does. A failed answer is retried, so a lost request would show as delivered late, not lost.
 */
const FUNCTION = `
async function onTrack(event, settings) {
  const res = await fetch(settings.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(event),
  });
  if (!res.ok) throw new RetryError('destination answered ' + res.status);
  await res.json();
}`;

/** Monotonic milliseconds, comparable between processes of one machine (CLOCK_MONOTONIC). */
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** The i-th event of a phase: a realistic server-side track call (~450 bytes). */
function event(phase: string, i: number): Record<string, unknown> {
  return {
    type: 'track',
    messageId: `${phase}-${i}`,
    userId: `user-${i % 5000}`,
    event: 'Order Completed',
    properties: { orderId: `o-${i}`, total: (i % 1000) + 0.99, currency: 'EUR' },
    context: {
      library: { name: '@segment/analytics-node', version: '3.1.0' },
      ip: '203.0.113.7',
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0',
    },
  };
}

// ---- the destination: its own process, recording when each event arrived ----

interface Arrivals {
  /** messageId → arrival time (first arrival; later ones are duplicates). */
  [messageId: string]: number;
}

function destination(): void {
  let arrivals: Arrivals = {};
  let duplicates = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = now();
      const id = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messageId: string }).messageId;
      if (arrivals[id] === undefined) arrivals[id] = at;
      else duplicates++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    process.send!({ port: (server.address() as { port: number }).port });
  });
  process.on('message', (m: { collect?: boolean }) => {
    if (!m.collect) return;
    process.send!({ arrivals, duplicates });
    arrivals = {};
    duplicates = 0;
  });
}

class DestinationProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static start(): Promise<DestinationProcess> {
    const child = fork(new URL(import.meta.url).pathname, ['--destination'], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`destination exited with ${code}`)));
      child.once('message', (m: { port: number }) =>
        resolve(new DestinationProcess(child, `http://127.0.0.1:${m.port}`)),
      );
    });
  }

  /** What arrived since the last collection. */
  collect(): Promise<{ arrivals: Arrivals; duplicates: number }> {
    return new Promise((resolve) => {
      this.child.once('message', resolve);
      this.child.send({ collect: true });
    });
  }

  stop(): void {
    this.child.removeAllListeners('exit');
    this.child.kill('SIGTERM');
  }
}

// ---- the load: requests at fixed times (open loop), whatever the answers before them took ----

interface LoadResult {
  sent: number;
  /** messageId → when its request was written to its connection. */
  sentAt: Map<string, number>;
  /** Response times of requests answered 200. */
  responseMs: number[];
  failed: Map<string, number>;
  /** How late each request was written, against its schedule (the generator's stalls, waits for a connection). */
  lateMs: number[];
  seconds: number;
}

async function load(
  url: string,
  path: string,
  phase: string,
  rate: number,
  seconds: number,
  onSecond: (second: number) => void,
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: MAX_CONNECTIONS });
  const auth = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`;
  const total = Math.round(rate * seconds);
  const result: LoadResult = {
    sent: 0,
    sentAt: new Map(),
    responseMs: [],
    failed: new Map(),
    lateMs: [],
    seconds: 0,
  };
  const answered: Promise<void>[] = [];
  const send = (i: number, due: number) => {
    const id = `${phase}-${i}`;
    const body = Buffer.from(JSON.stringify(event(phase, i)));
    answered.push(
      new Promise<void>((resolve) => {
        const req = request(
          `${url}${path}`,
          {
            method: 'POST',
            agent,
            headers: {
              'content-type': 'application/json',
              authorization: auth,
              'content-length': body.length,
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => {
              const ms = now() - result.sentAt.get(id)!;
              if (res.statusCode === 200) result.responseMs.push(ms);
              else
                result.failed.set(
                  `HTTP ${res.statusCode}`,
                  (result.failed.get(`HTTP ${res.statusCode}`) ?? 0) + 1,
                );
              resolve();
            });
          },
        );
        req.on('error', (err) => {
          result.failed.set(err.message, (result.failed.get(err.message) ?? 0) + 1);
          resolve();
        });
        // 'finish': the request is written to its connection (after waiting for one, if all were busy).
        req.on('finish', () => {
          const at = now();
          result.sentAt.set(id, at);
          result.lateMs.push(at - due);
        });
        req.end(body);
      }),
    );
    result.sent++;
  };

  const interval = 1000 / rate;
  const started = now();
  let next = 0;
  let second = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const t = now();
      while (next < total && started + next * interval <= t) {
        send(next, started + next * interval);
        next++;
      }
      const elapsed = Math.floor((t - started) / 1000);
      while (second < elapsed) onSecond(++second);
      if (next >= total) resolve();
      else setTimeout(tick, Math.max(0, Math.min(1, started + next * interval - now())));
    };
    tick();
  });
  result.seconds = (now() - started) / 1000;
  await Promise.all(answered);
  agent.destroy();
  return result;
}

// ---- CPU per process: on a shared machine the work done per event is the figure that load does not bend ----

const ROLES: Array<[string, RegExp]> = [
  ['nats-server', /nats-server/],
  ['gateway', /cli\/main\.[jt]s\0gateway/],
  ['runner', /cli\/main\.[jt]s\0runner/],
  ['sandbox', /sandbox\/child\.[jt]s/],
  ['destination', /e2e\.bench\.ts\0--destination/],
];

/** CPU ms used so far by this process ("load") and by each of its descendants, by role. */
function cpuByRole(): Record<string, number> {
  const out: Record<string, number> = { load: (process.cpuUsage().user + process.cpuUsage().system) / 1000 };
  const visit = (pid: string) => {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      let children: string[] = [];
      try {
        children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8')
          .trim()
          .split(/\s+/)
          .filter(Boolean);
      } catch {
        continue;
      }
      for (const child of children) {
        try {
          const cmdline = readFileSync(`/proc/${child}/cmdline`, 'utf8');
          const role = ROLES.find(([, re]) => re.test(cmdline))?.[0];
          if (role) {
            const fields = readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1]!.split(' ');
            out[role] = (out[role] ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10; // 10 ms ticks
          }
          visit(child);
        } catch {
          // exited meanwhile
        }
      }
    }
  };
  visit(String(process.pid));
  return out;
}

/** Roles that see only the events delivered; the others see every event sent. */
const DELIVERY_ROLES = new Set(['runner', 'sandbox', 'destination']);

/** CPU µs per event of each role between two readings, per event it handled. */
function cpuPerEvent(
  before: Record<string, number>,
  after: Record<string, number>,
  events: { sent: number; delivered: number },
) {
  const out: Record<string, number> = {};
  for (const role of Object.keys(after)) {
    const n = DELIVERY_ROLES.has(role) ? events.delivered : events.sent;
    out[role] = Math.round(((after[role]! - (before[role] ?? 0)) * 1000) / Math.max(1, n));
  }
  return out;
}

// ---- figures ----

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface Summary {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

function summary(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

const ms = (v: number) => Math.round(v * 10) / 10;
const line = (s: Summary) =>
  `p50 ${ms(s.p50)} ms, p99 ${ms(s.p99)} ms, p99.9 ${ms(s.p999)} ms, max ${ms(s.max)} ms`;

/** Sent → arrived at the destination, for every event that arrived (those that did not are counted apart). */
function latencies(sent: LoadResult, arrivals: Arrivals): number[] {
  const out: number[] = [];
  for (const [id, at] of sent.sentAt) {
    const arrived = arrivals[id];
    if (arrived !== undefined) out.push(arrived - at);
  }
  return out;
}

/** The gateway's own view, from its /metrics: the wait for JetStream's acks, and its event loop's delay. */
interface GatewayView {
  /** Bucket bounds (ms) under which half and 99 % of the requests' ack waits fell, and the count. */
  ackP50Ms: number;
  ackP99Ms: number;
  acks: number;
  /** Event-loop delay since the previous scrape (prom-client resets it on each), ms. */
  loopP99Ms: number;
  loopMaxMs: number;
}

async function gatewayView(
  url: string,
  before?: Map<number, number>,
): Promise<{ view: GatewayView; buckets: Map<number, number> }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  const buckets = new Map<number, number>();
  for (const m of text.matchAll(/^dfn_gateway_publish_duration_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) {
    buckets.set(m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]) * 1000, Number(m[2]));
  }
  const counts = [...buckets].map(([le, n]) => [le, n - (before?.get(le) ?? 0)] as const);
  const acks = counts.at(-1)?.[1] ?? 0;
  const bound = (q: number) => counts.find(([, n]) => n >= q * acks)?.[0] ?? Number.NaN;
  return {
    view: {
      ackP50Ms: bound(0.5),
      ackP99Ms: bound(0.99),
      acks,
      loopP99Ms: value('dfn_gateway_nodejs_eventloop_lag_p99_seconds') * 1000,
      loopMaxMs: value('dfn_gateway_nodejs_eventloop_lag_max_seconds') * 1000,
    },
    buckets,
  };
}

/** The runner's sandbox calls so far, from its /metrics: how many, and the events they carried. */
async function sandboxCalls(port: number): Promise<{ calls: number; events: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (suffix: string) =>
    Number(
      new RegExp(`^dfn_runner_sandbox_call_events_${suffix}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ??
        0,
    );
  return { calls: value('count'), events: value('sum') };
}

async function waitForArrivals(
  dest: DestinationProcess,
  expected: number,
): Promise<{ arrivals: Arrivals; duplicates: number }> {
  const all: Arrivals = {};
  let duplicates = 0;
  const deadline = now() + DRAIN_MS;
  for (;;) {
    const batch = await dest.collect();
    Object.assign(all, batch.arrivals);
    duplicates += batch.duplicates;
    if (Object.keys(all).length >= expected || now() > deadline) return { arrivals: all, duplicates };
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '1000' },
      duration: { type: 'string', default: '60' },
      'ceiling-duration': { type: 'string' },
      profile: { type: 'string' },
    },
  });
  const rate = Number(values.rate);
  const duration = Number(values.duration);
  const ceilingDuration = Number(values['ceiling-duration'] ?? duration);
  const nodeArgs = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : [];
  if (!(rate > 0) || !(duration > 0) || !(ceilingDuration > 0))
    throw new Error('--rate, --duration and --ceiling-duration must be positive numbers');

  const nats = await NatsServer.start();
  const dest = await DestinationProcess.start();
  let gateway: GatewayProcess | undefined;
  let runner: RunnerProcess | undefined;
  let runnerDir: string | undefined;
  try {
    gateway = await GatewayProcess.start(nats.url, { [WRITE_KEY]: SOURCE }, { nodeArgs, built: true });
    runnerDir = writeConfigDir({
      natsUrl: nats.url,
      source: SOURCE,
      instance: INSTANCE,
      functionSource: FUNCTION,
      settings: { url: `${dest.url}/events` },
      // Production values where the test harness has fast ones.
      config: { consumer: { ackWaitMs: 30_000 }, stats: { intervalMs: 5000 } },
    });
    runner = RunnerProcess.start(runnerDir, [], { nodeArgs, built: true });
    await runner.consuming(120_000);
    const runnerPort = await runner.httpPort();
    const nc = await nats.connect();
    const jsm = await nc.jetstreamManager();
    const t = topology();
    const pending = async () => {
      const info = await jsm.consumers.info(t.eventsStream, consumerName(INSTANCE));
      return { pending: info.num_pending, ackPending: info.num_ack_pending };
    };

    console.log(
      `end-to-end benchmark: ${rate} single-event /v1/track requests/s for ${duration} s ` +
        `(ceiling: the same straight to the destination for ${ceilingDuration} s), up to ${MAX_CONNECTIONS} keep-alive connections`,
    );
    // Warm-up (JIT in every process, connections, the stream's files), not measured.
    await load(gateway.url, '/v1/track', 'warm', rate, Math.min(5, duration), () => {});
    await waitForArrivals(dest, Math.round(rate * Math.min(5, duration)));

    // The ceiling: the same requests at the same rate, one hop, so the machine's own latency shows.
    const ceilingLoad = await load(dest.url, '/direct', 'ceiling', rate, ceilingDuration, () => {});
    const ceilingArrivals = await waitForArrivals(dest, ceilingLoad.sent);
    const ceiling = summary(latencies(ceilingLoad, ceilingArrivals.arrivals));
    console.log(`  ceiling (load → destination):   ${line(ceiling)}`);

    // The system: every second, how much the consumer holds (a backlog that grows is a system falling behind).
    let maxPending = 0;
    const gatewayBefore = await gatewayView(gateway.url);
    const callsBefore = await sandboxCalls(runnerPort);
    const cpuBefore = cpuByRole();
    const machineBefore = machineTicks();
    const samples: Promise<void>[] = [];
    const e2eLoad = await load(gateway.url, '/v1/track', 'e2e', rate, duration, (second) => {
      samples.push(
        pending().then((p) => {
          maxPending = Math.max(maxPending, p.pending);
          if (second % 10 === 0)
            console.log(`  ${second} s: consumer pending ${p.pending}, ack pending ${p.ackPending}`);
        }),
      );
    });
    const atEnd = await pending();
    const machine = machineShare(machineBefore, machineTicks());
    const { view } = await gatewayView(gateway.url, gatewayBefore.buckets);
    await Promise.all(samples);
    const { arrivals, duplicates } = await waitForArrivals(dest, e2eLoad.sent);
    // After the drain: a runner that fell behind does part of the work after the last request.
    const delivered = Object.keys(arrivals).length;
    const callsAfter = await sandboxCalls(runnerPort);
    const calls = callsAfter.calls - callsBefore.calls;
    const eventsPerCall =
      Math.round(((callsAfter.events - callsBefore.events) / Math.max(1, calls)) * 10) / 10;
    const cpu = cpuPerEvent(cpuBefore, cpuByRole(), { sent: e2eLoad.sent, delivered });
    const accepted = e2eLoad.responseMs.length;
    const e2e = summary(latencies(e2eLoad, arrivals));
    const gw = summary(e2eLoad.responseMs);
    const late = summary(e2eLoad.lateMs);
    const failures = [...e2eLoad.failed].map(([why, n]) => `${n} × ${why}`).join(', ');
    console.log(`  end to end (load → destination): ${line(e2e)}`);
    console.log(`  gateway response:               ${line(gw)}`);
    console.log(
      `  sent ${e2eLoad.sent} in ${e2eLoad.seconds.toFixed(1)} s (generator late: p99 ${ms(late.p99)} ms, ` +
        `max ${ms(late.max)} ms), accepted ${accepted}${failures ? ` (${failures})` : ''}, delivered ${delivered} ` +
        `(by ${DRAIN_MS / 1000} s after the last request)` +
        `${duplicates ? `, ${duplicates} twice` : ''}`,
    );
    console.log(
      `  inside the gateway: JetStream's acks within ${view.ackP50Ms} ms for half the requests, ` +
        `${view.ackP99Ms} ms for 99 % (histogram bounds, ${view.acks} requests); ` +
        `event-loop delay p99 ${ms(view.loopP99Ms)} ms, max ${ms(view.loopMaxMs)} ms`,
    );
    console.log(
      `  backlog: consumer pending at the last request ${atEnd.pending} (ack pending ${atEnd.ackPending}), ` +
        `most seen ${maxPending}`,
    );
    console.log(
      `  CPU µs per event: ${Object.entries(cpu)
        .map(([role, us]) => `${role} ${us}`)
        .join(', ')}`,
    );
    console.log(`  the runner's sandbox calls: ${calls}, ${eventsPerCall} events each (mean)`);
    console.log(`  ${machineLine(machine)}`);
    await nc.close();
    console.log(
      JSON.stringify({
        rate,
        duration_s: duration,
        p50_ms: ms(e2e.p50),
        p99_ms: ms(e2e.p99),
        max_ms: ms(e2e.max),
        gateway_p99_ms: ms(gw.p99),
        gateway_ack_p99_ms: view.ackP99Ms,
        gateway_loop_p99_ms: ms(view.loopP99Ms),
        delivered,
        sent: e2eLoad.sent,
        pending_end: atEnd.pending,
        pending_max: maxPending,
        ceiling_p50_ms: ms(ceiling.p50),
        ceiling_p99_ms: ms(ceiling.p99),
        steal_pct: machine.stealPct,
        events_per_call: eventsPerCall,
        // CPU µs per event of each process, so an A/B compares the work done as well as the latencies.
        ...Object.fromEntries(
          Object.entries(cpu).map(([role, us]) => [`cpu_${role.replace('-', '_')}_us`, us]),
        ),
      }),
    );
  } finally {
    if (runner) {
      runner.kill('SIGTERM');
      await runner.exit().catch(() => runner?.dispose());
    }
    await gateway?.stop();
    dest.stop();
    await nats.dispose();
    if (runnerDir) removeDir(runnerDir);
  }
}

if (process.argv[2] === '--destination') destination();
else await main();
