// Logs and metrics of a dfn process through the ecosystem's kept libraries: pino (fastify's own logger) in
// the line shape of lib/log.ts, and a prom-client registry with the process's default metrics.

import { type DestinationStream, type Level, type Logger, pino } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { pinoLineOptions } from './log.js';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type TelemetryLogLevel = Level | 'silent';

/** JSON lines on stdout (or `destination`), `component` on every line. */
export function processLogger(
  component: string,
  level: TelemetryLogLevel = 'info',
  destination?: DestinationStream,
): Logger {
  const options = { level, ...pinoLineOptions(component) };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that writes nothing (tests, benchmarks). */
export const silentProcessLogger = (): Logger => pino({ level: 'silent' });

/** A registry for one process: `prefix`-named default metrics (CPU, memory, event loop lag) included. */
export function processRegistry(prefix: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}
