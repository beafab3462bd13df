// The messages between the sandbox supervisor (supervisor.ts) and its sandbox process (child.ts), over
// Node's IPC channel. One message per call in each direction: a micro-batch travels as one message, its
// events and reports as one JSON string each (copied as they are, never walked object by object).

import type { EncodedEvents } from './sandbox.js';
import type { SandboxOptions } from './types.js';

export type ToChild =
  | { t: 'load'; source: string; options: SandboxOptions }
  | { t: 'invoke'; id: number; events: EncodedEvents }
  | { t: 'invoke-batch'; id: number; events: EncodedEvents };

export type FromChild =
  | { t: 'loaded'; handlers: string[]; loadLogs: string[] }
  | { t: 'load-failed'; reason: string; line?: number; column?: number }
  | { t: 'failed'; message: string }
  /** `reports`: JSON of InvocationReport[] ('reports') or of one BatchReport ('batch-report'). */
  | { t: 'reports' | 'batch-report'; id: number; reports: string; rebuilds: number }
  | { t: 'call-failed'; id: number; message: string; rebuilds: number };
