// The sandbox's public contract: how a loaded function is invoked and what each invocation reports.

import type { FunctionSettings, HandlerName, SegmentEvent } from '../api/events.js';
import type { Outcome } from '../api/outcome.js';
import type { SettingDefinition } from '../api/settings.js';

export interface SandboxLimits {
  /** Heap limit of the isolate (MiB). */
  memoryMb: number;
  /** Wall-clock limit per invocation (ms): CPU loops, loops after an await and never-settling promises. */
  timeoutMs: number;
  /** Console output kept per invocation (bytes), as Segment's test console. */
  logBytes: number;
  /** fetch: per-request timeout (ms) and response body cap (bytes). */
  fetchTimeoutMs: number;
  fetchMaxResponseBytes: number;
  /** `cache`: entries and approximate bytes kept per loaded function. */
  cacheEntries: number;
  cacheBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  memoryMb: 128,
  timeoutMs: 5_000,
  logBytes: 4_096,
  fetchTimeoutMs: 10_000,
  fetchMaxResponseBytes: 5 * 1024 * 1024,
  cacheEntries: 1_000,
  cacheBytes: 8 * 1024 * 1024,
};

export interface SandboxOptions {
  /** Settings handed to every handler. */
  settings?: FunctionSettings;
  /**
   * The function's settings schema. When the settings do not satisfy it, no handler runs: every
   * invocation ends as Invalid Settings (discard), as in Segment.
   */
  settingsSchema?: readonly SettingDefinition[];
  /** Values (secrets) redacted from logs, request traces and error messages. */
  sensitiveValues?: readonly string[];
  /** Let fetch reach loopback and private addresses (local testing). Link-local metadata stays refused. */
  allowPrivateNetwork?: boolean;
  limits?: Partial<SandboxLimits>;
  /** Shown in stack traces and syntax errors. */
  filename?: string;
  /**
   * Whether a success's report carries its console lines and request traces (default true: `dfn test`
   * and the sandbox API show them). The runner shows nothing of a success, so it sets false: traces are
   * then neither redacted nor sent for one, and its report crosses as its duration alone.
   */
  successDetails?: boolean;
}

export interface RequestTrace {
  method: string;
  url: string;
  /** HTTP status, or 0 when the request failed before a response (refused, timeout, network error). */
  status: number;
  durationMs: number;
  requestHeaders: Record<string, string>;
  error?: string;
}

/** What one invocation (one event, or one onBatch call) produced. */
export interface InvocationReport {
  outcome: Outcome;
  logs: string[];
  requests: RequestTrace[];
  /**
   * Requests made past the trace bounds (sandbox/bounds.ts: tracesPerInvocation, traceBytesPerInvocation,
   * and traceBytesPerIsolate for all invocations at once): counted, not traced.
   */
  requestsNotTraced?: number;
  durationMs: number;
  /**
   * Set when the invocation had not finished as its isolate was killed for time or memory: it may be the
   * one to blame or a bystander. The supervisor (sandbox/supervisor.ts) reruns such events alone to tell.
   */
  interrupted?: 'time' | 'memory';
}

export interface BatchReport extends InvocationReport {
  /** One outcome per event of the batch (partial results, or the batch's outcome repeated). */
  results: Outcome[];
}

/**
 * The JSON text each event was parsed from, by index, where its producer kept it (and did not change the
 * event since): it crosses into the sandbox as it came instead of being stringified again. The isolate
 * parses the same text the host did.
 */
export type EventTexts = readonly (string | undefined)[];

export interface FunctionSandbox {
  /** Handlers the function's source defines. */
  readonly handlers: ReadonlySet<HandlerName>;
  /** Console output of the function's top-level code while it loaded. */
  readonly loadLogs: readonly string[];
  /** Runs each event's single handler, concurrently in one boundary crossing; one report per event. */
  invoke(events: readonly SegmentEvent[], texts?: EventTexts): Promise<InvocationReport[]>;
  /** Runs onBatch once over mixed events. Requires the function to define onBatch. */
  invokeBatch(events: readonly SegmentEvent[], texts?: EventTexts): Promise<BatchReport>;
  /** Times the isolate was rebuilt after running out of memory or time. */
  readonly rebuilds: number;
  /** The isolate's heap in use (bytes), where it runs in this process (bench:sandbox reports it). */
  heapBytes?(): Promise<number | undefined>;
  dispose(): void;
}

/** The function's source could not be loaded (syntax error, or it threw at top level). */
export class FunctionLoadError extends Error {
  override readonly name = 'FunctionLoadError';
  constructor(
    /** What went wrong, without the position. */
    readonly reason: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(line !== undefined ? `${reason} (line ${line}, column ${column ?? 0})` : reason);
  }
}
