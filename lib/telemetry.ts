// Logs and metrics of every dfn process through the ecosystem's kept libraries: pino (fastify's own
// logger) writing one JSON object per line, and one prom-client registry per process.

import { type DestinationStream, type Level, type Logger, type LoggerOptions, pino } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type TelemetryLogLevel = Level | 'silent';

/**
 * The line shape of every dfn process, as log collectors in a cluster expect:
 * {"level":"info","time":ISO-8601,"component":…,…bindings,…fields,"msg":…}.
 */
function lineOptions(component: string, level: TelemetryLogLevel): LoggerOptions {
  return {
    level,
    // `component` replaces pino's pid and hostname: the pod already names both.
    base: { component },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // An Error serialises to `{}`; a log line should say what went wrong.
    serializers: { error: (value: unknown) => (value instanceof Error ? value.message : value) },
    // Defence in depth: no code path logs headers, but a credential must never reach a log.
    redact: ['req.headers.authorization', 'headers.authorization'],
  };
}

/** JSON lines on stdout (or `destination`), `component` on every line. */
export function processLogger(
  component: string,
  level: TelemetryLogLevel = 'info',
  destination?: DestinationStream,
): Logger {
  const options = lineOptions(component, level);
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that writes nothing (tests, benchmarks). */
export const silentProcessLogger = (): Logger => pino({ level: 'silent' }, { write: () => {} });

/** A registry for one process: `prefix`-named default metrics (CPU, memory, event loop lag) included. */
export function processRegistry(prefix: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}

/** Histogram buckets in seconds, 0.5 ms to 10 s: request, publish and handler latencies. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
