// The messages between the sandbox supervisor (supervisor.ts) and its sandbox process (child.ts), over
// Node's IPC channel. One message per call in each direction: a micro-batch travels as one message, its
// events and reports as one JSON string each (copied as they are, never walked object by object).

import { SUCCESS } from '../api/outcome.js';
import type { EncodedEvents } from './sandbox.js';
import type { InvocationReport, SandboxOptions } from './types.js';

export type ToChild =
  | { t: 'load'; source: string; options: SandboxOptions }
  | { t: 'invoke'; id: number; events: EncodedEvents }
  | { t: 'invoke-batch'; id: number; events: EncodedEvents };

export type FromChild =
  | { t: 'loaded'; handlers: string[]; loadLogs: string[] }
  | { t: 'load-failed'; reason: string; line?: number; column?: number }
  | { t: 'failed'; message: string }
  /** `reports`: InvocationReport[] as encodeReports writes them ('reports'), or one BatchReport's JSON. */
  | { t: 'reports' | 'batch-report'; id: number; reports: string; rebuilds: number }
  | { t: 'call-failed'; id: number; message: string; rebuilds: number };

/** A report that says only "succeeded, in this long": no logs, no requests, nothing in doubt. */
function quiet(r: InvocationReport): boolean {
  return (
    r.outcome.outcome === 'success' &&
    r.logs.length === 0 &&
    r.requests.length === 0 &&
    r.requestsNotTraced === undefined &&
    r.interrupted === undefined
  );
}

/**
 * A micro-batch's reports as they cross: a quiet report (most of them) as its duration alone, the
 * others as they are. Half the characters for a trivial handler, and as many fewer objects to write and
 * to parse again on the other side.
 */
export function encodeReports(reports: readonly InvocationReport[]): string {
  let out = '[';
  for (let i = 0; i < reports.length; i++) {
    const r = reports[i]!;
    out += `${i ? ',' : ''}${quiet(r) ? String(r.durationMs) : JSON.stringify(r)}`;
  }
  return `${out}]`;
}

export function decodeReports(json: string): InvocationReport[] {
  const raw = JSON.parse(json) as (number | InvocationReport)[];
  return raw.map((r) =>
    typeof r === 'number' ? { outcome: SUCCESS, logs: [], requests: [], durationMs: r } : r,
  );
}
