// Test harness for the runner: config directories on disk, the runner as a real child process (so signals
// and exit codes are real), events published to a real JetStream, and bounded polling for conditions.

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JetStreamClient, JetStreamManager, NatsConnection } from 'nats';
import { stringify } from 'yaml';
import type { EventType, SegmentEvent } from '../../api/events.js';
import {
  type DeliveryRecord,
  ensureInstanceConsumer,
  ensureStreams,
  eventSubject,
  type InstanceRef,
  type RunnerStats,
  statsSubject,
  type Topology,
  topology,
} from '../../api/jetstream.js';
import type { RetryConfig, RunnerConfigInput } from '../../api/runner-config.js';
import { silentProcessLogger } from '../../lib/telemetry.js';
import { DeliveryRecorder } from '../../runner/delivery-records.js';
import { InFlight } from '../../runner/in-flight.js';
import { OutcomeHandler } from '../../runner/outcome-handler.js';
import { Requeuer } from '../../runner/requeue.js';
import { RetrySchedule } from '../../runner/retry-schedule.js';
import { Stats } from '../../runner/stats.js';
import { Redactor } from '../../sandbox/index.js';
import { Destination } from '../helpers/destination.js';
import { type DfnOptions, type DfnRun, runDfn as runCommand, spawnDfn } from '../helpers/dfn.js';
import { NatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait.js';

/** Hooks that start nats-server and a runner process get this long: on a loaded 2-core CI box it adds up. */
export const STARTUP_TIMEOUT_MS = 120_000;

export { waitFor };

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface ConfigDirOptions {
  natsUrl: string;
  instance?: InstanceRef;
  source?: string;
  functionSource: string;
  settings?: Record<string, unknown>;
  secrets?: Record<string, string>;
  /** Merged over the test defaults (section by section). */
  config?: DeepPartial<RunnerConfigInput> & Record<string, unknown>;
}

export const TEST_INSTANCE: InstanceRef = { namespace: 'default', name: 'crm' };
export const TEST_SOURCE = 'web';

/** A config directory as the operator would mount it, with test-friendly defaults (fast retries, ack wait). */
export function writeConfigDir(options: ConfigDirOptions): string {
  const dir = mkdtempSync(join(tmpdir(), 'dfn-runner-'));
  const instance = options.instance ?? TEST_INSTANCE;
  const overrides = options.config ?? {};
  const section = (name: string, defaults: Record<string, unknown>) => ({
    ...defaults,
    ...((overrides as Record<string, Record<string, unknown> | undefined>)[name] ?? {}),
  });
  const config = {
    ...overrides,
    apiVersion: 'dfn.dev/v1alpha1',
    kind: 'RunnerConfig',
    instance: { ...instance, source: options.source ?? TEST_SOURCE },
    function: section('function', { revision: 'rev-1' }),
    nats: section('nats', { url: options.natsUrl, ensureTopology: true, connectTimeoutMs: 5000 }),
    consumer: section('consumer', { ackWaitMs: 2000 }),
    retry: section('retry', { maxAttempts: 3, delaysMs: [100], jitter: 0 }),
    network: section('network', { allowPrivateNetwork: true }),
    stats: section('stats', { intervalMs: 200 }),
    http: section('http', { host: '127.0.0.1', port: 0 }),
    shutdown: section('shutdown', { gracePeriodMs: 5000 }),
  };
  writeFileSync(join(dir, 'config.yaml'), stringify(config));
  writeFileSync(join(dir, 'function.js'), options.functionSource);
  if (options.settings) writeFileSync(join(dir, 'settings.json'), JSON.stringify(options.settings, null, 2));
  if (options.secrets) {
    mkdirSync(join(dir, 'secrets'));
    for (const [name, value] of Object.entries(options.secrets))
      writeFileSync(join(dir, 'secrets', name), `${value}\n`);
  }
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export { spawnDfn };

/** Runs `dfn <args>` to completion. */
export function runDfn(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<DfnRun> {
  return runCommand(args, { env, timeoutMs });
}

/** A `dfn runner` process: its JSON log lines, exit, and signals. */
export class RunnerProcess {
  output = '';
  readonly logs: Array<Record<string, any>> = [];
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly child: ChildProcess) {
    let partial = '';
    const onData = (d: Buffer) => {
      this.output += d;
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        try {
          this.logs.push(JSON.parse(line));
        } catch {
          // not a log line
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (this.output += d));
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      }),
    );
  }

  static start(
    configDir: string,
    extraArgs: string[] = [],
    options: Pick<DfnOptions, 'nodeArgs' | 'built'> = {},
  ): RunnerProcess {
    return new RunnerProcess(spawnDfn(['runner', '--config', configDir, ...extraArgs], options));
  }

  get exitCode(): number | null | undefined {
    return this.exitInfo?.code;
  }

  log(msg: string): Record<string, any> | undefined {
    return this.logs.find((l) => l.msg === msg);
  }

  /** Resolves once the runner logs that it is consuming (its consumer exists and pulls started). */
  async consuming(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      () => `the runner to start consuming\n${this.output}`,
      () => {
        if (this.exitInfo) throw new Error(`runner exited (${this.exitInfo.code}):\n${this.output}`);
        return this.log('consuming');
      },
      timeoutMs,
    );
  }

  /** Port of the /metrics, /healthz, /readyz server (config http.port 0 picks one). */
  async httpPort(): Promise<number> {
    const line = await waitFor('the HTTP server to listen', () =>
      this.log('serving /healthz, /readyz and /metrics'),
    );
    return line.port as number;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async exit(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      this.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`runner did not exit in ${timeoutMs} ms:\n${this.output}`)),
          timeoutMs,
        );
      }),
    ]);
    clearTimeout(timer);
    return result;
  }

  /** Stops the process whatever its state (test clean-up). */
  async dispose(): Promise<void> {
    if (this.exitInfo) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface Fixture {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  t: Topology;
}

export async function fixture(nc: NatsConnection): Promise<Fixture> {
  return { nc, js: nc.jetstream(), jsm: await nc.jetstreamManager(), t: topology('dfn') };
}

/** Creates the streams and the instance's consumer, as the operator would before starting runners. */
export async function prepareTopology(
  f: Fixture,
  options: { instance?: InstanceRef; source?: string; ackWaitMs?: number; maxAckPending?: number } = {},
): Promise<void> {
  await ensureStreams(f.jsm, f.t);
  await ensureInstanceConsumer(f.jsm, f.t, {
    ...(options.instance ?? TEST_INSTANCE),
    source: options.source ?? TEST_SOURCE,
    ackWaitMs: options.ackWaitMs ?? 2000,
    ...(options.maxAckPending ? { maxAckPending: options.maxAckPending } : {}),
  });
}

/** A delivery record as a runner writes one for a failed attempt of TEST_INSTANCE, with `over` on top. */
export function deliveryRecord(over: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return {
    instance: TEST_INSTANCE,
    replica: 'runner-0',
    revision: 'rev-1',
    messageId: 'm-1',
    eventType: 'track',
    eventName: 'Order Completed',
    disposition: 'retry',
    errorType: 'Retry',
    message: 'destination answered 503',
    attempt: 2,
    maxAttempts: 10,
    batch: false,
    logs: [],
    requests: [],
    durationMs: 15,
    publishedAt: '2030-01-01T00:00:00.000Z',
    at: '2030-01-01T00:00:30.000Z',
    ...over,
  };
}

let counter = 0;
/** A track event with a unique messageId. */
export function track(
  properties: Record<string, unknown> = {},
  overrides: Partial<SegmentEvent> = {},
): SegmentEvent {
  counter++;
  return {
    type: 'track',
    event: 'Order Completed',
    userId: `user-${counter}`,
    messageId: `msg-${process.pid}-${Date.now()}-${counter}`,
    properties,
    timestamp: new Date().toISOString(),
    ...overrides,
  };
}

/** Publishes events as the gateway does (subject per source and type, Nats-Msg-Id = messageId). */
export async function publish(
  f: Fixture,
  events: readonly SegmentEvent[],
  source = TEST_SOURCE,
): Promise<void> {
  const pending: Promise<unknown>[] = [];
  for (const e of events) {
    pending.push(
      f.js.publish(eventSubject(f.t, source, e.type as EventType), JSON.stringify(e), {
        ...(e.messageId ? { msgID: e.messageId } : {}),
      }),
    );
    if (pending.length >= 500) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

/** Collects the runner stats messages of an instance. */
export function watchStats(
  f: Fixture,
  instance: InstanceRef = TEST_INSTANCE,
): { latest(): RunnerStats | undefined; stop(): void } {
  let latest: RunnerStats | undefined;
  const sub = f.nc.subscribe(statsSubject(f.t, instance), {
    callback: (_err, msg) => {
      latest = JSON.parse(new TextDecoder().decode(msg.data)) as RunnerStats;
    },
  });
  return { latest: () => latest, stop: () => sub.unsubscribe() };
}

/**
 * The runner's outcome path in this process, as Runner wires it (real JetStream, records and requeues), for
 * tests that hold events and settle them without a runner process.
 */
export function outcomePath(
  f: Fixture,
  instance: InstanceRef,
  retry: RetryConfig,
  capacity = 10,
): { stats: Stats; inFlight: InFlight; outcomes: OutcomeHandler } {
  const identity = { instance, replica: 'test', revision: 'rev-1' };
  const stats = new Stats(identity);
  const inFlight = new InFlight(capacity, f.t);
  const log = silentProcessLogger();
  const outcomes = new OutcomeHandler({
    js: f.js,
    topology: f.t,
    identity,
    schedule: new RetrySchedule(retry),
    stats,
    inFlight,
    records: new DeliveryRecorder(f.js, f.t, identity, new Redactor([]), log, () => f.nc.info?.max_payload),
    requeue: new Requeuer(f.js, f.t, instance),
    log,
  });
  return { stats, inFlight, outcomes };
}

export async function consumerState(f: Fixture, consumer: string) {
  const info = await f.jsm.consumers.info(f.t.eventsStream, consumer);
  return {
    pending: info.num_pending,
    ackPending: info.num_ack_pending,
    delivered: info.delivered.stream_seq,
  };
}

/**
 * What a runner test needs around the runner: a nats-server with the topology, a connection and its
 * JetStream handles, a destination, and the config dirs and runner processes the test made — all
 * cleaned up by dispose().
 */
export class RunnerWorld {
  private readonly runners: RunnerProcess[] = [];
  private readonly dirs: string[] = [];

  private constructor(
    readonly nats: NatsServer,
    readonly nc: NatsConnection,
    readonly f: Fixture,
    readonly dest: Destination,
  ) {}

  /** `natsArgs`: extra nats-server flags (e.g. `-c <file>` for a config file). */
  static async start(natsArgs: readonly string[] = []): Promise<RunnerWorld> {
    const nats = await NatsServer.start(natsArgs);
    const nc = await nats.connect();
    const f = await fixture(nc);
    const dest = await Destination.start();
    await prepareTopology(f);
    return new RunnerWorld(nats, nc, f, dest);
  }

  /** A config directory pointing at this world's NATS; removed by dispose(). */
  configDir(options: Omit<ConfigDirOptions, 'natsUrl'>): string {
    const dir = writeConfigDir({ natsUrl: this.nats.url, ...options });
    this.dirs.push(dir);
    return dir;
  }

  startRunner(dir: string, extraArgs: string[] = []): RunnerProcess {
    const runner = RunnerProcess.start(dir, extraArgs);
    this.runners.push(runner);
    return runner;
  }

  async dispose(): Promise<void> {
    for (const r of this.runners.splice(0)) await r.dispose();
    await this.nc.close();
    await this.dest.close();
    await this.nats.dispose();
    for (const d of this.dirs.splice(0)) removeDir(d);
  }
}
