// One container of a Pod as a process: started under a tether with its log file, probed, restarted on exit
// as its Pod's restartPolicy says (with a kubelet's back-off), stopped with the grace period.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import { type ExitStatus, TetheredProcess } from '../process.js';
import { KubeletError } from './errors.js';
import { type PortResolver, ProbeRunner } from './probes.js';

/** The wire shape of a ContainerState (what Pod status carries). */
export type ContainerStateWire =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: string } }
  | {
      terminated: {
        exitCode: number;
        signal?: number;
        reason: string;
        message?: string;
        startedAt?: string;
        finishedAt: string;
        containerID?: string;
      };
    };

export interface Launch {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
}

export interface ContainerHooks {
  /** Builds the argv and env just before each start (so a fixed ConfigMap is picked up); may throw. */
  launch(): Promise<Launch>;
  /** Something in the status changed. */
  changed(): void;
  /** Every exit, however it came (for the kubelet's log). */
  exited(exit: ExitStatus): void;
  /** After an exit: restart it? (restartPolicy, and whether the Pod is going away) */
  shouldRestart(exit: ExitStatus): boolean;
  ports: PortResolver;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = {
  SIGKILL: 9,
  SIGTERM: 15,
  SIGINT: 2,
  SIGSEGV: 11,
  SIGABRT: 6,
};
// A container that ran this long without exiting starts its back-off from scratch (as a kubelet does).
const BACKOFF_RESET_MS = 10 * 60_000;
const MAX_BACKOFF_MS = 5 * 60_000;
const CONFIG_RETRY_MS = 2_000;

export class ContainerRun {
  restartCount = 0;
  state: ContainerStateWire = { waiting: { reason: 'ContainerCreating' } };
  lastState: ContainerStateWire | undefined;
  ready = false;
  started = false;
  pid: number | undefined;
  /** How long a liveness kill waits before SIGKILL: the Pod's terminationGracePeriodSeconds. */
  graceMs = 30_000;
  private process: TetheredProcess | undefined;
  private probes: ProbeRunner[] = [];
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private stopping = false;
  private runs = 0;
  /** Resolves when the container has terminated and will not restart (init containers, restartPolicy). */
  readonly done: Promise<ExitStatus>;
  private finish!: (exit: ExitStatus) => void;

  constructor(
    readonly spec: V1Container,
    private readonly logDir: string,
    private readonly hooks: ContainerHooks,
    private readonly baseBackoffMs: number,
  ) {
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  get running(): boolean {
    return this.process?.running ?? false;
  }

  get containerId(): string | undefined {
    return this.pid === undefined ? undefined : `dfn-local://${this.pid}`;
  }

  /** Where this run's output goes: one file per run, as `kubectl logs` and `--previous` read them. */
  logFile(run = this.restartCount): string {
    return join(this.logDir, `${run}.log`);
  }

  start(): void {
    if (this.stopping) return;
    void this.launch();
  }

  private async launch(): Promise<void> {
    let launch: Launch;
    try {
      launch = await this.hooks.launch();
    } catch (err) {
      if (!(err instanceof KubeletError)) throw err;
      if (err.reason === 'StartError') return this.startFailed(err.message);
      // A missing ConfigMap or key: wait for it, as a kubelet does, and try again.
      this.state = { waiting: { reason: err.reason, message: err.message } };
      this.hooks.changed();
      this.timer = setTimeout(() => this.start(), CONFIG_RETRY_MS);
      return;
    }
    await mkdir(this.logDir, { recursive: true });
    if (this.stopping) return;
    const [file, ...args] = launch.argv;
    const process = new TetheredProcess(file!, args, {
      env: launch.env,
      cwd: launch.cwd,
      logFile: this.logFile(),
    });
    this.process = process;
    this.runs++;
    const startedAt = new Date();
    this.pid = await process.pid.catch(() => undefined);
    this.state = { running: { startedAt: startedAt.toISOString() } };
    this.startProbes();
    this.hooks.changed();
    const exit = await process.exited;
    this.onExit(exit, startedAt);
  }

  private startFailed(message: string): void {
    const now = new Date().toISOString();
    this.recordTermination({ terminated: { exitCode: 128, reason: 'StartError', message, finishedAt: now } });
    this.afterTermination({ code: 128, signal: null }, 0);
  }

  private onExit(exit: ExitStatus, startedAt: Date): void {
    this.stopProbes();
    this.process = undefined;
    const code = exit.code ?? 128 + (SIGNAL_NUMBERS[exit.signal!] ?? 0);
    this.recordTermination({
      terminated: {
        exitCode: code,
        ...(exit.signal ? { signal: SIGNAL_NUMBERS[exit.signal] ?? 0 } : {}),
        reason: code === 0 ? 'Completed' : 'Error',
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        ...(this.containerId ? { containerID: this.containerId } : {}),
      },
    });
    this.afterTermination(exit, Date.now() - startedAt.getTime());
  }

  private recordTermination(terminated: ContainerStateWire): void {
    this.ready = false;
    this.started = false;
    this.state = terminated;
    this.hooks.changed();
  }

  private afterTermination(exit: ExitStatus, ranMs: number): void {
    this.hooks.exited(exit);
    if (this.stopping || !this.hooks.shouldRestart(exit)) {
      this.finish(exit);
      return;
    }
    // The first restart is immediate, then 10 s, 20 s, … up to 5 min: a crash loop costs little.
    if (ranMs >= BACKOFF_RESET_MS) this.backoffMs = 0;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs === 0 ? this.baseBackoffMs : this.backoffMs * 2);
    this.lastState = this.state;
    this.restartCount++;
    if (delay > 0) {
      const message = `back-off ${Math.round(delay / 1000)}s restarting failed container=${this.spec.name}`;
      this.state = { waiting: { reason: 'CrashLoopBackOff', message } };
    }
    this.hooks.changed();
    this.timer = setTimeout(() => this.start(), delay);
  }

  private startProbes(): void {
    const { readinessProbe, livenessProbe, startupProbe } = this.spec;
    const afterStartup = () => {
      this.started = true;
      if (!readinessProbe) this.ready = true;
      if (readinessProbe) this.addProbe(readinessProbe, false, (ok) => (this.ready = ok));
      if (livenessProbe) {
        this.addProbe(livenessProbe, true, (ok) => {
          // A failing liveness probe restarts the container (its exit takes the usual path).
          if (!ok) void this.process?.stop(this.graceMs);
        });
      }
      this.hooks.changed();
    };
    if (startupProbe) {
      this.addProbe(startupProbe, false, (ok) => {
        if (!ok) return;
        this.probes.shift()?.stop();
        afterStartup();
      });
    } else {
      afterStartup();
    }
  }

  private addProbe(
    probe: NonNullable<V1Container['readinessProbe']>,
    initial: boolean,
    apply: (ok: boolean) => void,
  ) {
    const runner = new ProbeRunner(probe, this.hooks.ports, initial, (ok) => {
      apply(ok);
      this.hooks.changed();
    });
    this.probes.push(runner);
    runner.start();
  }

  private stopProbes(): void {
    for (const p of this.probes) p.stop();
    this.probes = [];
  }

  /** SIGTERM, SIGKILL after `graceMs`; no restart afterwards. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    this.stopProbes();
    const process = this.process;
    if (process) await process.stop(graceMs);
    else this.finish({ code: null, signal: null });
  }

  /** For tests and diagnostics: has it ever been started? */
  get everStarted(): boolean {
    return this.runs > 0;
  }
}
