// Child processes that cannot outlive their parent: the control plane's servers and the kubelet's
// containers. Each runs under a tiny sh tether in its own process group, so even a kill -9 of dfn ends them.

import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';

// The tether: runs "$@" with stdin from /dev/null, reports its pid on fd 3, then reads signal names from
// its own stdin (a pipe from us). End of that pipe means the parent is gone (or gave up): the whole
// process group is killed, grandchildren included. It exits with the child's status (128+N: signal N).
// (An async list's stdin is /dev/null before its own redirections apply, hence the copy on fd 4.)
const TETHER = `
exec 4<&0
"$@" </dev/null 3>&- 4<&- &
child=$!
echo "$child" >&3
exec 3>&-
(
  while read -r sig; do kill -s "$sig" "$child" 2>/dev/null; done
  kill -0 "$child" 2>/dev/null && kill -s KILL 0
) <&4 &
exec 4<&-
watcher=$!
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
`;

export interface ExitStatus {
  /** The exit code, when the process exited by itself. */
  code: number | null;
  /** The signal that ended it, e.g. SIGKILL. */
  signal: NodeJS.Signals | null;
}

export interface TetheredOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** stdout and stderr are appended to this file (a log), or discarded. */
  logFile?: string;
}

const SIGNALS_BY_NUMBER: Record<number, NodeJS.Signals> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  3: 'SIGQUIT',
  6: 'SIGABRT',
  9: 'SIGKILL',
  11: 'SIGSEGV',
  13: 'SIGPIPE',
  14: 'SIGALRM',
  15: 'SIGTERM',
};

export class TetheredProcess {
  /** Resolves once the process (not only the tether) has ended. */
  readonly exited: Promise<ExitStatus>;
  /** The pid of the command itself; resolves once it has started. */
  readonly pid: Promise<number>;
  private status: ExitStatus | undefined;
  private readonly groupId: number;
  private readonly control: Writable;

  constructor(
    readonly command: string,
    readonly args: readonly string[],
    options: TetheredOptions = {},
  ) {
    const out = options.logFile ? openSync(options.logFile, 'a') : 'ignore';
    const child = spawn('/bin/sh', ['-c', TETHER, 'tether', command, ...args], {
      cwd: options.cwd,
      env: options.env ?? (process.env as Record<string, string>),
      stdio: ['pipe', out, out, 'pipe'],
      // Its own process group: a Ctrl-C meant for dfn does not reach it before dfn stops it in order,
      // and the whole group can be killed at once.
      detached: true,
    });
    this.groupId = child.pid!;
    this.control = child.stdin!;
    // A write after the tether died must not crash the parent.
    this.control.on('error', () => {});
    const report = child.stdio[3] as Readable;
    this.pid = new Promise((resolve, reject) => {
      let text = '';
      report.on('data', (d) => (text += d));
      report.on('end', () => {
        const pid = Number.parseInt(text, 10);
        if (Number.isInteger(pid)) resolve(pid);
        else reject(new Error(`${command} did not start`));
      });
    });
    this.pid.catch(() => {});
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        // The tether reports a signalled child as 128+N.
        const status: ExitStatus =
          code !== null && code > 128 && SIGNALS_BY_NUMBER[code - 128]
            ? { code: null, signal: SIGNALS_BY_NUMBER[code - 128]! }
            : { code, signal };
        this.status = status;
        // What the command left behind in its group (e.g. its own children) goes with it, as a container's do.
        this.killGroup();
        resolve(status);
      });
      child.on('error', () => resolve({ code: 127, signal: null }));
    });
  }

  get running(): boolean {
    return this.status === undefined;
  }

  /** Sends a signal to the command (not to the tether). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.control.write(`${signal.replace(/^SIG/, '')}\n`);
  }

  /** SIGTERM, then SIGKILL for the whole group after `graceMs`; resolves once it has ended. */
  async stop(graceMs = 10_000): Promise<ExitStatus> {
    if (!this.running) return this.status!;
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.killGroup();
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    return this.exited;
  }

  private killGroup(): void {
    try {
      process.kill(-this.groupId, 'SIGKILL');
    } catch {
      // ESRCH: the group is already empty.
    }
  }
}
