// One FunctionInstance's runner: the function loaded in its sandbox, consuming the instance's durable
// consumer (filter → invoke → outcome), with stats, lease keeping and a graceful stop. main.ts runs it.

import { hostname } from 'node:os';
import type { Consumer, JetStreamClient, JetStreamManager, JsMsg, NatsConnection } from 'nats';
import type { SegmentEvent } from '../api/events.js';
import {
  consumerName,
  createMissingStreams,
  ensureInstanceConsumer,
  type InstanceRef,
  MAX_CRASHES,
  topology as makeTopology,
  type Topology,
} from '../api/jetstream.js';
import type { Logger } from '../lib/telemetry.js';
import {
  DEFAULT_LIMITS,
  type FunctionSandbox,
  loadSupervisedFunction,
  Redactor,
  type SandboxLimits,
} from '../sandbox/index.js';
import type { LoadedRunnerConfig } from './config-loader.js';
import { ConsumerLoop } from './consumer-loop.js';
import { DeliveryRecorder } from './delivery-records.js';
import { compileEventFilter, type EventFilter } from './filters.js';
import { InFlight } from './in-flight.js';
import { Invoker } from './invoker.js';
import { MaxDeliveriesBackstop } from './max-deliveries.js';
import type { Gauges } from './metrics.js';
import { connectNats } from './nats-connection.js';
import { OutcomeHandler } from './outcome-handler.js';
import { Requeuer } from './requeue.js';
import { RetrySchedule } from './retry-schedule.js';
import { Stats, StatsPublisher } from './stats.js';

export type RunnerState =
  | 'loaded'
  | 'connecting'
  | 'waiting-for-consumer'
  | 'consuming'
  | 'stopping'
  | 'stopped';

/** How long one pull request waits for messages; short enough that a stop never waits long on it. */
const PULL_EXPIRES_MS = 5000;
/** Past its time limit, the sandbox's own backstop ends an invocation within this; later means it is stuck. */
const SANDBOX_BACKSTOP_MARGIN_MS = 1000;

export function defaultReplicaName(): string {
  return process.env.DFN_REPLICA || process.env.POD_NAME || process.env.HOSTNAME || hostname();
}

export interface RunnerOptions {
  replica?: string;
  log: Logger;
}

export class Runner {
  state: RunnerState = 'loaded';
  readonly instance: InstanceRef;
  readonly replica: string;
  readonly topology: Topology;
  readonly consumerName: string;
  readonly stats: Stats;
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private loop: ConsumerLoop | undefined;
  private inFlight: InFlight | undefined;
  private outcomes: OutcomeHandler | undefined;
  private invoker: Invoker | undefined;
  private records: DeliveryRecorder | undefined;
  private publisher: StatsPublisher | undefined;
  private backstop: MaxDeliveriesBackstop | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private readonly filter: EventFilter;
  private readonly decoder = new TextDecoder();
  private readonly abort = new AbortController();
  private starting: Promise<void> | undefined;
  private stopping: Promise<{ released: number }> | undefined;
  private natsConnected = false;

  private constructor(
    readonly loaded: LoadedRunnerConfig,
    private readonly sandbox: FunctionSandbox,
    private readonly log: Logger,
    replica: string,
  ) {
    const { config } = loaded;
    this.instance = { namespace: config.instance.namespace, name: config.instance.name };
    this.replica = replica;
    const base = makeTopology(config.nats.prefix);
    this.topology = config.nats.stream ? { ...base, eventsStream: config.nats.stream } : base;
    this.consumerName = config.nats.consumer ?? consumerName(this.instance);
    this.stats = new Stats(
      { instance: this.instance, replica, revision: config.function.revision },
      new Redactor(loaded.sensitiveValues),
    );
    this.filter = compileEventFilter(config.filters, config.dataControl, config.instance.name);
  }

  /** Loads the function into its sandbox; a FunctionLoadError means bad code, before anything is consumed. */
  static async load(loaded: LoadedRunnerConfig, options: RunnerOptions): Promise<Runner> {
    const { config } = loaded;
    const limits: Partial<SandboxLimits> = {};
    for (const key of [
      'timeoutMs',
      'memoryMb',
      'logBytes',
      'fetchTimeoutMs',
      'fetchMaxResponseBytes',
      'cacheEntries',
      'cacheBytes',
    ] as const) {
      const value = config.limits[key];
      if (value !== undefined) limits[key] = value;
    }
    const replica = options.replica ?? defaultReplicaName();
    const log = options.log.child({ replica });
    // The function runs in a sandbox process of its own: whatever it does to that process, this one (its
    // NATS connection, its acks) stays up, and the events it held are rerun or charged a crash.
    const sandbox = await loadSupervisedFunction(
      loaded.source,
      {
        settings: loaded.settings,
        sensitiveValues: loaded.sensitiveValues,
        settingsSchema: config.function.settingsSchema,
        allowPrivateNetwork: config.network.allowPrivateNetwork,
        limits,
        filename: 'function.js',
        // A success is acked and counted; its logs and requests go nowhere (records are of failures).
        successDetails: false,
      },
      {
        onProcessExit: (reason) =>
          log.warn({ reason }, 'the sandbox process ended; the next events start a new one'),
      },
    );
    return new Runner(loaded, sandbox, log, replica);
  }

  get handlers(): ReadonlySet<string> {
    return this.sandbox.handlers;
  }

  /** Console output of the function's top-level code when it loaded. */
  get functionLoadLogs(): readonly string[] {
    return this.sandbox.loadLogs;
  }

  /** Ready means pulling: connected, consumer found, not stopping, last pull fine. */
  readiness(): { ready: boolean; reason: string } {
    if (this.state !== 'consuming') return { ready: false, reason: this.state };
    if (!this.natsConnected) return { ready: false, reason: 'NATS disconnected' };
    if (this.loop && !this.loop.healthy) return { ready: false, reason: 'pulls from the consumer failing' };
    return { ready: true, reason: 'consuming' };
  }

  gauges(): Gauges {
    return {
      inFlight: this.inFlight?.size ?? 0,
      natsConnected: this.natsConnected,
      ready: this.readiness().ready,
      sandboxRebuilds: this.sandbox.rebuilds,
    };
  }

  /** Connects, finds (or creates) the consumer, and starts consuming. Throws NatsUnreachableError. */
  start(): Promise<void> {
    this.starting ??= this.connectAndConsume();
    return this.starting;
  }

  /** Returns early, consuming nothing, once stop() has begun: each await is a checkpoint. */
  private async connectAndConsume(): Promise<void> {
    const { config } = this.loaded;
    const stopped = () => this.abort.signal.aborted;
    this.state = 'connecting';
    const nc = await connectNats(
      {
        servers: config.nats.url,
        auth: this.loaded.natsAuth,
        name: `dfn-runner ${this.instance.namespace}/${this.instance.name} ${this.replica}`,
        connectTimeoutMs: config.nats.connectTimeoutMs,
      },
      this.log,
      this.abort.signal,
    );
    this.nc = nc;
    if (stopped()) return;
    this.natsConnected = true;
    this.watchConnection(nc);
    this.log.info({ server: nc.getServer() }, 'connected to NATS');
    const jsm = await nc.jetstreamManager({ timeout: 10_000 }).catch((err) => {
      throw new Error(
        `NATS at ${nc.getServer()} has no JetStream (start nats-server with -js): ${err.message}`,
      );
    });
    this.js = nc.jetstream();
    if (stopped()) return;

    if (config.nats.ensureTopology) {
      await createMissingStreams(jsm, this.topology);
      await ensureInstanceConsumer(jsm, this.topology, {
        ...this.instance,
        source: config.instance.source,
        eventTypes: config.filters.eventTypes,
        maxAckPending: config.consumer.maxAckPending,
        ackWaitMs: config.consumer.ackWaitMs,
      });
    }
    const consumer = await this.waitForConsumer();
    if (!consumer || stopped()) return;
    const info = await consumer.info(true);
    if (stopped()) return;
    const maxAckPending = info.config.max_ack_pending ?? -1;
    const capacity = Math.max(
      1,
      maxAckPending > 0 ? Math.min(config.limits.concurrency, maxAckPending) : config.limits.concurrency,
    );
    const ackWaitMs = Math.max(1000, Math.round((info.config.ack_wait ?? 30e9) / 1e6));
    if (capacity < config.limits.concurrency) {
      this.log.warn(
        {
          concurrency: config.limits.concurrency,
          maxAckPending,
        },
        "limits.concurrency is above the consumer's max_ack_pending; holding fewer events",
      );
    }

    const inFlight = new InFlight(capacity, this.topology);
    this.inFlight = inFlight;
    const schedule = new RetrySchedule(config.retry);
    const identity = { instance: this.instance, replica: this.replica, revision: config.function.revision };
    this.records = new DeliveryRecorder(
      this.js,
      this.topology,
      identity,
      new Redactor(this.loaded.sensitiveValues),
      this.log,
      // Read at each record: after a reconnect the server (and its max_payload) may be another.
      () => nc.info?.max_payload,
    );
    this.outcomes = new OutcomeHandler({
      js: this.js,
      topology: this.topology,
      identity,
      schedule,
      stats: this.stats,
      inFlight,
      records: this.records,
      requeue: new Requeuer(this.js, this.topology, this.instance),
      log: this.log,
    });
    this.backstop = await this.startBackstop(jsm, identity);
    if (stopped()) return;
    this.invoker = new Invoker(this.sandbox, this.outcomes, this.stats, config.batching);
    if (config.batching.enabled && !this.invoker.batching) {
      this.log.warn('batching.enabled is set but the function defines no onBatch: using its single handlers');
    }

    // With batching, a batch must be able to fill while the next pull waits for room.
    const minRoom = this.invoker.batching
      ? Math.max(1, Math.min(Math.floor(capacity / 4), capacity - config.batching.maxSize + 1))
      : Math.max(1, Math.min(Math.floor(capacity / 4), 64));
    this.loop = new ConsumerLoop(consumer, inFlight, (msg) => this.receive(msg), this.log, {
      expiresMs: PULL_EXPIRES_MS,
      minRoom,
    });
    this.publisher = new StatsPublisher(nc, this.topology, this.stats, () => inFlight.size);
    this.publisher.start(config.stats.intervalMs);
    this.startLeaseKeeper(ackWaitMs);
    this.state = 'consuming';
    this.loop.start();
    this.log.info(
      {
        stream: this.topology.eventsStream,
        consumer: this.consumerName,
        capacity,
        ackWaitMs,
        batching: this.invoker.batching ? config.batching : false,
        maxAttempts: config.retry.maxAttempts,
      },
      'consuming',
    );
  }

  /** One message from the consumer: decode, filter, then hold it until its outcome is known. */
  private receive(msg: JsMsg): void {
    this.stats.counters.received++;
    let event: SegmentEvent;
    let text: string;
    try {
      text = this.decoder.decode(msg.data);
      event = JSON.parse(text);
    } catch (err) {
      this.outcomes!.rejected(msg, `payload is not valid JSON: ${(err as Error).message}`);
      return;
    }
    if (
      event === null ||
      typeof event !== 'object' ||
      Array.isArray(event) ||
      typeof event.type !== 'string'
    ) {
      this.outcomes!.rejected(msg, 'payload is not a Segment event (a JSON object with a string "type")');
      return;
    }
    const verdict = this.filter(event);
    if (!verdict.pass) {
      // "Why did my event not arrive?" is answered with logLevel: debug.
      if (this.log.isLevelEnabled('debug'))
        this.log.debug({ messageId: event.messageId, reason: verdict.reason }, 'filtered');
      this.outcomes!.filtered(msg);
      return;
    }
    // Unchanged by data control: it crosses into the sandbox as the text it came as.
    const held = this.inFlight!.add(msg, verdict.event, verdict.event === event ? text : undefined);
    if (held.history.crashes >= MAX_CRASHES) this.outcomes!.crashLimitReached(held);
    else this.invoker!.submit(held);
  }

  /** The max_deliver backstop, on the instance's advisory consumer (created with the instance consumer). */
  private async startBackstop(
    jsm: JetStreamManager,
    identity: { instance: InstanceRef; replica: string; revision: string },
  ): Promise<MaxDeliveriesBackstop | undefined> {
    let consumer: Consumer;
    try {
      consumer = await this.js!.consumers.get(this.topology.advisoryStream, this.consumerName);
    } catch (err) {
      this.log.warn(
        { stream: this.topology.advisoryStream, consumer: this.consumerName, error: err },
        'no advisory consumer for this instance: events that reach max_deliver will not be dead-lettered',
      );
      return undefined;
    }
    const backstop = new MaxDeliveriesBackstop(
      consumer,
      { js: this.js!, jsm, topology: this.topology, identity, stats: this.stats, log: this.log },
      PULL_EXPIRES_MS,
    );
    backstop.start();
    return backstop;
  }

  /** Held longer than the sandbox lets an invocation run: the sandbox did not end it, so it may be the cause. */
  private overdue(held: { receivedAt: number }, now: number): boolean {
    const { limits, batching } = this.loaded.config;
    const wait = this.invoker?.batching ? batching.maxWaitMs : 0;
    const limit = (limits.timeoutMs ?? DEFAULT_LIMITS.timeoutMs) + SANDBOX_BACKSTOP_MARGIN_MS + wait;
    return now - held.receivedAt > limit;
  }

  private async waitForConsumer(): Promise<Consumer | undefined> {
    this.state = 'waiting-for-consumer';
    let lastLog = 0;
    while (!this.abort.signal.aborted) {
      try {
        return await this.js!.consumers.get(this.topology.eventsStream, this.consumerName);
      } catch (err) {
        if (Date.now() - lastLog > 30_000) {
          lastLog = Date.now();
          this.log.warn(
            {
              stream: this.topology.eventsStream,
              consumer: this.consumerName,
              error: err,
            },
            'waiting for the consumer to exist (the operator creates it; or set nats.ensureTopology: true)',
          );
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    return undefined;
  }

  /** Events held longer than a third of ack_wait get working(), so long batches and calls are not redelivered. */
  private startLeaseKeeper(ackWaitMs: number): void {
    const threshold = Math.floor(ackWaitMs / 3);
    this.leaseTimer = setInterval(
      () => {
        const now = Date.now();
        for (const held of this.inFlight!) {
          if (now - held.leaseAt < threshold) continue;
          held.leaseAt = now;
          try {
            held.msg.working();
          } catch {
            // Disconnected: the message may be redelivered, which at-least-once allows.
          }
        }
      },
      Math.max(100, Math.floor(ackWaitMs / 6)),
    );
    this.leaseTimer.unref();
  }

  private watchConnection(nc: NatsConnection): void {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.natsConnected = false;
          this.log.warn({ server: String(s.data) }, 'disconnected from NATS; reconnecting');
        } else if (s.type === 'reconnect') {
          this.natsConnected = true;
          this.log.info({ server: String(s.data) }, 'reconnected to NATS');
        }
      }
    })().catch(() => {});
  }

  /**
   * Graceful stop: no more pulls, waiting batches flushed, in-flight events finished within the grace
   * period (the rest handed back to NATS), records and stats flushed, connection drained.
   */
  stop(gracePeriodMs = this.loaded.config.shutdown.gracePeriodMs): Promise<{ released: number }> {
    this.stopping ??= this.gracefulStop(gracePeriodMs);
    return this.stopping;
  }

  private async gracefulStop(gracePeriodMs: number): Promise<{ released: number }> {
    this.abort.abort();
    // start() gives up at its next checkpoint; after that, whatever it set up is torn down below.
    await this.starting?.catch(() => {});
    const wasConsuming = this.state === 'consuming';
    this.state = 'stopping';
    const releasedBefore = this.stats.counters.released;
    // Stops after its pull under way, like the consumer loop (it may have started before a stop at startup).
    const backstopStopped = this.backstop?.stop();
    if (wasConsuming) {
      // The grace period counts from the signal; the last pull (up to PULL_EXPIRES_MS) runs meanwhile.
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<false>((r) => {
        timer = setTimeout(() => r(false), gracePeriodMs);
      });
      const loopStopped = this.loop!.stop();
      this.invoker!.flushBatches();
      const finished = await Promise.race([
        loopStopped.then(async () => {
          this.invoker!.flushBatches(); // what the last pull added
          await this.inFlight!.waitForEmpty();
          return true;
        }),
        graceOver,
      ]);
      clearTimeout(timer);
      if (!finished) {
        // Not before the last pull has ended: handed back while it is open, events would come straight back.
        await loopStopped;
        const left = [...this.inFlight!];
        const now = Date.now();
        const overdue = left.filter((held) => this.overdue(held, now)).length;
        this.log.warn(
          {
            events: left.length,
            overdue,
          },
          'grace period over: handing unfinished events back to NATS',
        );
        await Promise.all(left.map((held) => this.outcomes!.release(held, this.overdue(held, now))));
      }
      // Copies and dead letters still being published (bounded: each publish has its own timeout).
      await this.outcomes!.drain(6000);
      clearInterval(this.leaseTimer);
      await this.records!.flush(2000);
      await this.publisher!.stop();
    }
    await backstopStopped;
    if (this.nc && !this.nc.isClosed()) {
      // drain() flushes the acks still buffered; bounded, since a dead server would hold it forever.
      await Promise.race([this.nc.drain().catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
      if (!this.nc.isClosed()) await this.nc.close().catch(() => {});
    }
    this.sandbox.dispose();
    this.state = 'stopped';
    return { released: this.stats.counters.released - releasedBefore };
  }
}
