// The messages between the sandbox supervisor (supervisor.ts) and its sandbox process (child.ts), over
// Node's IPC channel. One message per call in each direction: a micro-batch travels as one message.

import type { SegmentEvent } from '../api/events.js';
import type { BatchReport, InvocationReport, SandboxOptions } from './types.js';

export type ToChild =
  | { t: 'load'; source: string; options: SandboxOptions }
  | { t: 'invoke'; id: number; events: readonly SegmentEvent[] }
  | { t: 'invoke-batch'; id: number; events: readonly SegmentEvent[] };

export type FromChild =
  | { t: 'loaded'; handlers: string[]; loadLogs: string[] }
  | { t: 'load-failed'; reason: string; line?: number; column?: number }
  | { t: 'failed'; message: string }
  | { t: 'reports'; id: number; reports: InvocationReport[]; rebuilds: number }
  | { t: 'batch-report'; id: number; report: BatchReport; rebuilds: number }
  | { t: 'call-failed'; id: number; message: string; rebuilds: number };
