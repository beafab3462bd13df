// One sandbox process (child.ts) as its supervisor sees it: forked with the sandbox's node flags and a
// heap ceiling, calls in flight by id, and the process killed when it stops answering or outgrows its RSS.

import { type ChildProcess, fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { SegmentEvent } from '../api/events.js';
import { decodeReports, type FromChild, type ToChild } from './child-wire.js';
import { encodeEvents } from './sandbox.js';
import {
  type BatchReport,
  type EventTexts,
  FunctionLoadError,
  type InvocationReport,
  type SandboxOptions,
} from './types.js';

/**
 * How the wire is serialised. 'advanced' (V8's structured clone) and 'json' (JSON text and a newline)
 * cost the same CPU within noise, and so did length-prefixed frames of raw UTF-8 over a pipe of our own:
 * ~1.6 µs per event across both processes with micro-batches of 100 (~160 µs per call, the wake-ups and
 * system calls of one message each way, not the encoding). Structured clone keeps `undefined` and needs
 * no escaping, so it stays.
 */
const SERIALIZATION = 'advanced' as const;
/** How often the supervisor checks that calls get answered and that the process's RSS is below its ceiling. */
const CHECK_MS = 500;
/**
 * A process with calls in flight must answer one of them at least this long past the time limit: every
 * call ends within its turn plus the limit plus the in-process backstop's grace, so silence is a wedge.
 */
const SILENCE_GRACE_MS = 2_500;
/** Starting a process and loading the function into it may take this long past the load's own limit. */
const START_GRACE_MS = 30_000;

/** How long a profiled sandbox process may take to exit and write its profile when retired. */
const PROFILE_EXIT_MS = 10_000;

/** The environment a sandbox process gets: none of the runner's (its NATS credentials stay out of reach). */
const CHILD_ENV_KEYS = ['PATH', 'TMPDIR', 'TZ', 'LANG'] as const;

export interface ProcessLimits {
  timeoutMs: number;
  /** --max-old-space-size of the process: host-side heap growth kills it there, not in the runner. */
  heapMb: number;
  /** RSS ceiling (MiB), for memory V8's heap limit does not see (array buffers, native allocations). */
  rssMb: number;
}

/** What a call came back with: the child's answer, or the process died before it answered. */
export type CallOutcome<T> =
  | { died: false; value: T; crowded: boolean }
  | { died: true; reason: string; crowded: boolean };

interface PendingCall {
  resolve: (o: CallOutcome<unknown>) => void;
  reject: (err: Error) => void;
  /** Another call was in flight in the same process at some point during this one. */
  crowded: boolean;
}

export class SandboxProcess {
  handlers: string[] = [];
  loadLogs: string[] = [];
  /** Isolate rebuilds inside this process, as it last reported. */
  rebuilds = 0;
  /** Why the process ended, once it has. */
  endedFor: string | undefined;
  private readonly calls = new Map<number, PendingCall>();
  private nextId = 0;
  private lastAnswerAt = 0;
  private killedFor: string | undefined;
  private readonly checker: NodeJS.Timeout;
  private readonly exited: Promise<void>;
  private onLoad: ((m: FromChild | { t: 'exit'; reason: string }) => void) | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly limits: ProcessLimits,
    private readonly onExit: (reason: string) => void,
  ) {
    child.on('message', (m: FromChild) => this.receive(m));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const reason = this.killedFor ?? (signal ? `was killed by ${signal}` : `exited with code ${code}`);
        this.ended(reason);
        resolve();
      });
    });
    // A failed send (the channel closed under it) shows up as an 'exit' soon after; a process that could
    // not be started at all never exits.
    child.on('error', (err) => {
      if (child.pid === undefined) this.ended(`could not be started (${err.message})`);
    });
    this.checker = setInterval(() => this.check(), CHECK_MS);
    this.checker.unref();
  }

  /** Forks a sandbox process and loads the function into it; a FunctionLoadError when the code is at fault. */
  static async start(
    source: string,
    options: SandboxOptions,
    limits: ProcessLimits,
    onExit: (reason: string) => void,
  ): Promise<SandboxProcess> {
    const proc = new SandboxProcess(forkChild(limits), limits, onExit);
    const answer = await new Promise<FromChild | { t: 'exit'; reason: string }>((resolve) => {
      const timer = setTimeout(
        () => proc.kill(`did not load the function within ${limits.timeoutMs + START_GRACE_MS} ms`),
        limits.timeoutMs + START_GRACE_MS,
      );
      void proc.exited.then(() => clearTimeout(timer));
      proc.onLoad = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
      proc.post({ t: 'load', source, options });
    });
    proc.onLoad = undefined;
    if (answer.t === 'loaded') {
      proc.handlers = answer.handlers;
      proc.loadLogs = answer.loadLogs;
      return proc;
    }
    proc.kill('failed to load the function');
    if (answer.t === 'load-failed') throw new FunctionLoadError(answer.reason, answer.line, answer.column);
    if (answer.t === 'exit') {
      throw new FunctionLoadError(`the sandbox process ${answer.reason} while loading the function`);
    }
    throw new Error(
      `the sandbox process could not load the function: ${'message' in answer ? answer.message : answer.t}`,
    );
  }

  get alive(): boolean {
    return this.endedFor === undefined;
  }

  invoke(events: readonly SegmentEvent[], texts?: EventTexts): Promise<CallOutcome<InvocationReport[]>> {
    return this.call((id) => ({ t: 'invoke', id, events: encodeEvents(events, texts) }));
  }

  invokeBatch(events: readonly SegmentEvent[], texts?: EventTexts): Promise<CallOutcome<BatchReport>> {
    return this.call((id) => ({ t: 'invoke-batch', id, events: encodeEvents(events, texts) }));
  }

  /** Kills the process (SIGKILL: it may be wedged); calls in flight come back as died, with the reason. */
  kill(reason: string): void {
    if (!this.alive) return;
    this.killedFor ??= reason;
    this.child.kill('SIGKILL');
  }

  /**
   * Ends a process no longer wanted. Killed, as a rule; a profiled one is let go (its channel closed, so
   * it exits and writes its profile), and killed only if it has not exited a few seconds later.
   */
  retire(reason: string): void {
    if (!this.alive) return;
    if (profileFlags().length === 0 || !this.child.connected) {
      this.kill(reason);
      return;
    }
    this.killedFor ??= reason;
    this.child.disconnect();
    setTimeout(() => this.kill(reason), PROFILE_EXIT_MS).unref();
  }

  private call<T>(message: (id: number) => ToChild): Promise<CallOutcome<T>> {
    // Dead before the call was even sent: nothing ran, so nothing is to blame (crowded: rerun it).
    if (!this.alive) return Promise.resolve({ died: true, reason: this.endedFor!, crowded: true });
    const id = ++this.nextId;
    const crowded = this.calls.size > 0;
    if (crowded) for (const c of this.calls.values()) c.crowded = true;
    else this.lastAnswerAt = Date.now();
    const result = new Promise<CallOutcome<T>>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as PendingCall['resolve'], reject, crowded });
    });
    this.post(message(id));
    return result;
  }

  private post(message: ToChild): void {
    try {
      this.child.send(message);
    } catch {
      // The channel is closed: the process is exiting, and its 'exit' answers the calls.
    }
  }

  private receive(m: FromChild): void {
    if (m.t === 'loaded' || m.t === 'load-failed' || m.t === 'failed') {
      this.onLoad?.(m);
      return;
    }
    const call = this.calls.get(m.id);
    if (!call) return;
    this.calls.delete(m.id);
    this.lastAnswerAt = Date.now();
    this.rebuilds = m.rebuilds;
    if (m.t === 'call-failed') call.reject(new Error(m.message));
    else {
      const value = m.t === 'reports' ? decodeReports(m.reports) : JSON.parse(m.reports);
      call.resolve({ died: false, value, crowded: call.crowded });
    }
  }

  private ended(reason: string): void {
    if (this.endedFor !== undefined) return;
    this.endedFor = reason;
    clearInterval(this.checker);
    this.onLoad?.({ t: 'exit', reason });
    for (const call of this.calls.values()) call.resolve({ died: true, reason, crowded: call.crowded });
    this.calls.clear();
    this.onExit(reason);
  }

  private check(): void {
    if (!this.alive) return;
    const silentMs = Date.now() - this.lastAnswerAt;
    if (this.calls.size > 0 && silentMs > this.limits.timeoutMs + SILENCE_GRACE_MS) {
      this.kill(`stopped answering (no call answered for ${silentMs} ms)`);
      return;
    }
    const pid = this.child.pid;
    if (pid === undefined) return;
    // Linux only (as the pods are); elsewhere the heap ceiling alone bounds the process.
    readFile(`/proc/${pid}/status`, 'utf8').then(
      (status) => {
        const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0);
        if (kb > this.limits.rssMb * 1024) {
          this.kill(
            `outgrew its memory (RSS ${Math.round(kb / 1024)} MiB, ceiling ${this.limits.rssMb} MiB)`,
          );
        }
      },
      () => {},
    );
  }
}

function forkChild(limits: ProcessLimits): ChildProcess {
  // From the TypeScript sources (tests, tsx) the child is child.ts through tsx; built, child.js.
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(new URL(fromSource ? './child.ts' : './child.js', import.meta.url));
  const env: Record<string, string> = {};
  for (const key of CHILD_ENV_KEYS) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return fork(entry, [], {
    execArgv: [
      // isolated-vm needs it on Node >= 20 (as bin/dfn.js passes it to the runner).
      '--no-node-snapshot',
      `--max-old-space-size=${limits.heapMb}`,
      ...(fromSource ? ['--import', import.meta.resolve('tsx')] : []),
      ...profileFlags(),
    ],
    env,
    serialization: SERIALIZATION,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
}

/**
 * A runner started with --cpu-prof (bench:e2e --profile, say) profiles its sandbox processes too: that is
 * where user code and its fetches spend their time. Nothing else of the runner's node flags is passed on.
 */
function profileFlags(): string[] {
  return process.execArgv.filter((flag) => /^--cpu-prof(-dir=.*|-interval=\d+)?$/.test(flag));
}
