// The messages between the sandbox supervisor (supervisor.ts) and its sandbox process (child.ts), as
// frames (frames.ts) over a pipe: one frame per call in each direction. A micro-batch's events and its
// reports travel as the frame's payload, one JSON string each (copied as they are, never walked object
// by object); the header says what the frame is.

import type { SandboxOptions } from './types.js';

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
  /** Payload: JSON of InvocationReport[] ('reports') or of one BatchReport ('batch-report'). */
  | { t: 'reports' | 'batch-report'; id: number; rebuilds: number }
  | { t: 'call-failed'; id: number; message: string; rebuilds: number };
