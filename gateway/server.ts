// The gateway's public entry point: builds the fastify app (tracking routes, probes, errors, logging)
// around a write-keys file and a NATS connection, and owns their start and graceful stop.

import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Registry } from 'prom-client';
import {
  createMissingStreams,
  DEFAULT_NATS_URL,
  DEFAULT_PREFIX,
  type StreamLimits,
  type Topology,
  topology,
} from '../api/jetstream.js';
import { displayServers } from '../lib/nats-url.js';
import type { Logger } from '../lib/telemetry.js';
import { registerBodyParsing } from './body.js';
import { registerCors } from './cors.js';
import { GatewayError, isRetryable, toGatewayError } from './errors.js';
import { InFlightBudget } from './in-flight-budget.js';
import { type GatewayMetrics, gatewayMetrics } from './metrics.js';
import { NatsLink } from './nats-link.js';
import { answerClientError, OpenRequests } from './open-requests.js';
import { registerProbes } from './probes.js';
import { EventPublisher } from './publish.js';
import { decorateRequestState, requestState } from './request-state.js';
import {
  BATCH_ROUTES,
  registerTrackingRoutes,
  SINGLE_EVENT_ROUTES,
  type TrackingRouteConfig,
} from './routes.js';
import { LIMITS } from './validate.js';
import { WriteKeys } from './write-keys.js';

export const GATEWAY_DEFAULTS = {
  port: 8080,
  host: '0.0.0.0',
  natsUrl: DEFAULT_NATS_URL,
  prefix: DEFAULT_PREFIX,
  publishTimeoutMs: 5000,
  requestTimeoutMs: 30_000,
  shutdownGraceMs: 15_000,
  maxConnections: 10_000,
  maxInFlightEvents: 20_000,
  maxInFlightBytes: 64 * 1024 * 1024,
  maxRequestStoredBytes: 4 * 1024 * 1024,
  writeKeysPollMs: 5000,
  natsReconnectWaitMs: 2000,
} as const;

export interface GatewayOptions {
  /** The write-keys file (see WRITE_KEYS_FORMAT); read now, re-read when it changes. */
  writeKeysFile: string;
  /** NATS server URL(s), comma-separated. */
  natsUrl: string;
  /** Contents of a NATS .creds file, when NATS requires authentication. */
  natsCreds?: Uint8Array;
  /** JetStream prefix: events go to `<prefix>.events.<source>.<type>`. */
  prefix?: string;
  publishTimeoutMs?: number;
  /** Time a client has for a request's headers, and then again for its body (ms). */
  requestTimeoutMs?: number;
  /** How long close() lets open requests finish before it answers them 503 and closes their connections. */
  shutdownGraceMs?: number;
  /** Open connections at most; more are closed as they arrive (an idle one costs ~6 KB). */
  maxConnections?: number;
  /** The in-flight budget (events, bytes), shared fairly between clients: see in-flight-budget.ts. */
  maxInFlightEvents?: number;
  maxInFlightBytes?: number;
  /** Bytes a batch's events may take as stored, each with the batch's context copied in. */
  maxRequestStoredBytes?: number;
  /**
   * Proxies whose X-Forwarded-For names the client (addresses or CIDR ranges): behind a load balancer,
   * the client address the budget is shared by. Without, the peer's address counts.
   */
  trustProxy?: readonly string[];
  writeKeysPollMs?: number;
  natsReconnectWaitMs?: number;
  /**
   * Create the streams if missing (local development without the operator, which otherwise owns them).
   * `true` uses the default limits.
   */
  createStreams?: boolean | Partial<StreamLimits>;
  /** The process's logger (lib/telemetry.ts), fastify's too; without it nothing is logged. */
  log?: Logger;
  /** The process's registry (lib/telemetry.ts) for /metrics; without it, one of the gateway's series only. */
  registry?: Registry;
}

export interface Gateway {
  readonly app: FastifyInstance;
  readonly metrics: GatewayMetrics;
  readonly link: NatsLink;
  readonly budget: InFlightBudget;
  readonly writeKeys: WriteKeys;
  readonly topology: Topology;
  /** Starts serving; resolves with the bound address (e.g. http://127.0.0.1:8080). */
  listen(port: number, host: string): Promise<string>;
  /**
   * Stops accepting requests, lets those open finish within the shutdown grace period (then answers
   * them 503 GW_SHUTTING_DOWN and closes their connections), then drains the NATS connection.
   */
  close(): Promise<void>;
}

/** How long answers to requests ended by a shutdown may take to be written before connections close. */
const SHUTDOWN_FLUSH_MS = 1000;

/** Builds a gateway; throws WriteKeysFileError for a missing or invalid write-keys file. */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const t = topology(options.prefix ?? GATEWAY_DEFAULTS.prefix);
  const writeKeys = await WriteKeys.load(options.writeKeysFile);
  const metrics = gatewayMetrics(options.registry);
  let closing = false;
  const requestTimeoutMs = options.requestTimeoutMs ?? GATEWAY_DEFAULTS.requestTimeoutMs;
  const checkIntervalMs = OpenRequests.checkIntervalMs(requestTimeoutMs);

  const app = Fastify({
    // Without a logger fastify's own no-op one saves a child logger per request.
    ...(options.log ? { loggerInstance: options.log as FastifyBaseLogger } : { logger: false }),
    // Each request is logged once, by the onResponse hook below, with what happened to its events.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: LIMITS.batchBytes,
    // Node cuts off headers that take too long (a connection that sends nothing included) and answers
    // through answerClientError. Bodies get their own deadline (open-requests.ts), which answers with
    // a catalogue error; Node's whole-request timeout stays behind it only as a backstop.
    http: {
      headersTimeout: requestTimeoutMs,
      requestTimeout: 0,
      connectionsCheckingInterval: checkIntervalMs,
    },
    requestTimeout: 2 * requestTimeoutMs + 2 * checkIntervalMs,
    clientErrorHandler: (err, socket) => answerClientError(err, socket, metrics),
    // Requests arriving while stopping are answered by open-requests.ts, with a catalogue code.
    return503OnClosing: false,
    trustProxy: options.trustProxy && options.trustProxy.length > 0 ? [...options.trustProxy] : false,
  });
  const log = app.log;
  // Each connection costs memory before it sends a byte; a flood of them must not grow it without end.
  app.server.maxConnections = options.maxConnections ?? GATEWAY_DEFAULTS.maxConnections;
  app.server.on('drop', () => metrics.connectionsDropped.inc());

  metrics.writeKeys.set(writeKeys.size);
  writeKeys.on('reload', ({ keys, sources }) => {
    metrics.writeKeys.set(keys);
    metrics.writeKeysReloads.inc({ result: 'ok' });
    log.info({ writeKeys: keys, sources, file: writeKeys.path }, 'write keys reloaded');
  });
  writeKeys.on('reloadError', (err) => {
    metrics.writeKeysReloads.inc({ result: 'error' });
    log.error(
      { file: writeKeys.path, error: err.message },
      'write keys not reloaded; keeping the previous keys',
    );
  });
  writeKeys.watch({ pollMs: options.writeKeysPollMs ?? GATEWAY_DEFAULTS.writeKeysPollMs });

  let connectFailures = 0;
  const link = new NatsLink({
    servers: options.natsUrl,
    ...(options.natsCreds ? { creds: options.natsCreds } : {}),
    reconnectWaitMs: options.natsReconnectWaitMs ?? GATEWAY_DEFAULTS.natsReconnectWaitMs,
    publishTimeoutMs: options.publishTimeoutMs ?? GATEWAY_DEFAULTS.publishTimeoutMs,
    onStateChange: (state, detail) => {
      metrics.natsConnected.set(state === 'connected' ? 1 : 0);
      const fields = { nats: state, ...(detail ? { detail } : {}) };
      if (state === 'connected') log.info(fields, 'NATS connected');
      else if (!closing) log.warn(fields, 'NATS not connected: answering 503 until it is back');
      // Also after a reconnect: a development nats-server restarted without its store lost the streams.
      if (state === 'connected' && options.createStreams) {
        const limits = options.createStreams === true ? {} : options.createStreams;
        void link
          .connected()
          .then(async (nc) => createMissingStreams(await nc.jetstreamManager(), t, limits))
          .then(
            (kept) =>
              log.info(
                { stream: t.eventsStream, ...(kept.length ? { keptAsTheyAre: kept } : {}) },
                'JetStream streams ready',
              ),
            (err) => log.error({ error: (err as Error).message }, 'could not create the JetStream streams'),
          );
      }
    },
    onConnectError: (err) => {
      // Attempts 1, 2, 4, 8, …: a NATS that stays away is reported without flooding the log.
      connectFailures++;
      if ((connectFailures & (connectFailures - 1)) === 0) {
        log.warn(
          { error: err.message, nats: displayServers(options.natsUrl), attempts: connectFailures },
          'NATS not reachable yet',
        );
      }
    },
  });
  const publisher = new EventPublisher(link, t, metrics);
  const budget = new InFlightBudget(
    {
      events: options.maxInFlightEvents ?? GATEWAY_DEFAULTS.maxInFlightEvents,
      bytes: options.maxInFlightBytes ?? GATEWAY_DEFAULTS.maxInFlightBytes,
    },
    (held, active) => {
      metrics.inFlightBytes.set(held.bytes);
      metrics.inFlightKeys.set(active.keys);
      metrics.inFlightClients.set(active.clients);
    },
  );

  decorateRequestState(app);
  const open = new OpenRequests({ timeoutMs: requestTimeoutMs, metrics, isClosing: () => closing });
  open.register(app);
  registerBodyParsing(app, metrics);

  app.setErrorHandler((err, req, reply) => {
    const config = req.routeOptions.config as Partial<TrackingRouteConfig> | undefined;
    const gwErr = toGatewayError(err, {
      batch: config?.batch ?? true,
      bodyLimit: req.routeOptions.bodyLimit ?? LIMITS.batchBytes,
    });
    if (gwErr.code === 'GW_INTERNAL') req.log.error({ err }, 'unexpected error');
    const state = requestState(req);
    state.code = gwErr.code;
    if (isRetryable(gwErr.code)) state.error = gwErr.message;
    if (gwErr.retryAfter !== undefined) void reply.header('retry-after', String(gwErr.retryAfter));
    return reply.code(gwErr.statusCode).send(gwErr.toBody());
  });
  app.setNotFoundHandler((req, reply) => {
    const gwErr = new GatewayError('GW_ROUTE_NOT_FOUND', `got ${req.method} ${req.url.split('?')[0]}`);
    requestState(req).code = gwErr.code;
    return reply.code(gwErr.statusCode).send(gwErr.toBody());
  });

  app.addHook('onResponse', async (req, reply) => {
    const state = requestState(req);
    const status = reply.statusCode;
    metrics.requests.inc({ route: req.routeOptions.url ?? 'unmatched', status });
    // A full stream (429) is JetStream's refusal, counted with the 503s as a publish failure.
    if (state.code && status < 500 && !isRetryable(state.code)) metrics.rejects.inc({ reason: state.code });
    // One line per request; successes only at debug level, so a busy gateway's log stays readable.
    const level = status >= 500 ? 'warn' : status >= 400 ? 'info' : 'debug';
    if (!options.log?.isLevelEnabled(level)) return;
    req.log[level](
      {
        method: req.method,
        url: req.url,
        status,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        ...(state.source !== undefined ? { source: state.source } : {}),
        ...(state.accepted ? { accepted: state.accepted } : {}),
        ...(state.rejected ? { rejected: state.rejected } : {}),
        ...(state.duplicates ? { duplicates: state.duplicates } : {}),
        ...(state.code ? { code: state.code } : {}),
        ...(state.error ? { error: state.error } : {}),
      },
      status >= 500 ? 'request failed' : status >= 400 ? 'request rejected' : 'request completed',
    );
  });

  registerTrackingRoutes(app, {
    writeKeys,
    publisher,
    metrics,
    budget,
    maxStoredBytes: options.maxRequestStoredBytes ?? GATEWAY_DEFAULTS.maxRequestStoredBytes,
  });
  registerCors(app, [...SINGLE_EVENT_ROUTES.flatMap(([, paths]) => paths), ...BATCH_ROUTES]);
  registerProbes(app, { link, metrics, isClosing: () => closing });
  let stopped: Promise<void> | undefined;

  return {
    app,
    metrics,
    link,
    budget,
    writeKeys,
    topology: t,
    async listen(port, host) {
      return app.listen({ port, host });
    },
    close() {
      stopped ??= (async () => {
        closing = true;
        const graceMs = options.shutdownGraceMs ?? GATEWAY_DEFAULTS.shutdownGraceMs;
        // What is still open after the grace period is ended, so the process can exit: bodies still
        // arriving and events still awaiting their acks are answered 503 GW_SHUTTING_DOWN (the client
        // resends; messageIds dedupe what was stored), then any connection left is closed.
        const grace = setTimeout(() => {
          log.warn({ open: open.size, graceMs }, 'shutdown grace period over: ending open requests');
          link.failPending('SHUTTING_DOWN', 'the gateway stopped before JetStream acknowledged');
          void open.endAll(SHUTDOWN_FLUSH_MS).then(() => app.server.closeAllConnections());
        }, graceMs);
        try {
          await app.close();
        } finally {
          clearTimeout(grace);
          open.close();
        }
        writeKeys.close();
        await link.close();
      })();
      return stopped;
    },
  };
}
