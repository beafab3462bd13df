// Structured logs: one JSON object per line on stdout, as log collectors in a cluster expect, in one shape
// for every dfn process: {"time": ISO-8601, "level": "info", "msg": …, "component": …, …fields}.
// The runner writes them with the tiny logger below (its hot path never logs per event); the gateway's
// fastify/pino logger is configured by pinoLineOptions() to write the same shape.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  /** Lets a hot path skip building a debug line nobody will see. */
  readonly debugEnabled: boolean;
}

export function createLogger(
  level: LogLevel = 'info',
  base: Record<string, unknown> = {},
  write: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  const min = RANK[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] < min) return;
    write(
      `${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...base, ...fields }, errorReplacer)}\n`,
    );
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
    debugEnabled: min <= RANK.debug,
  };
}

/** Errors serialize to `{}` by default; a log line should say what went wrong. */
function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger('error', {}, () => {});

/** Pino options (for fastify's logger) that produce the line shape above. */
export function pinoLineOptions(component: string) {
  return {
    base: { component },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label: string) => ({ level: label }) },
  };
}
