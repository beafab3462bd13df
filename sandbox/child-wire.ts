// The messages between the sandbox supervisor (supervisor.ts) and its sandbox process (child.ts), as
// frames (frames.ts) over a pipe: one frame per call in each direction. A micro-batch's events and its
// reports travel as the frame's payload, one JSON string each (copied as they are, never walked object
// by object); the header says what the frame is.

import { SUCCESS } from '../api/outcome.js';
import type { InvocationReport, SandboxOptions } from './types.js';

/** The pipe's file descriptor in the sandbox process (0–2 are stdio). */
export const WIRE_FD = 3;
/** No honest frame comes near this: a larger one means the other side is not to be trusted. */
export const MAX_FRAME_BYTES = 1024 * 1024 * 1024;

export type ToChild =
  | { t: 'load'; source: string; options: SandboxOptions }
  /** Payload: the events, as one JSON array of `count` events. */
  | { t: 'invoke' | 'invoke-batch'; id: number; count: number };

export type FromChild =
  | { t: 'loaded'; handlers: string[]; loadLogs: string[] }
  | { t: 'load-failed'; reason: string; line?: number; column?: number }
  | { t: 'failed'; message: string }
  /** Payload: InvocationReport[] as encodeReports writes them ('reports'), or one BatchReport's JSON. */
  | { t: 'reports' | 'batch-report'; id: number; rebuilds: number }
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
