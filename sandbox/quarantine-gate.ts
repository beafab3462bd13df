// Who may use the sandbox process at a time: ordinary calls together, or one quarantine rerun alone (so
// that if the process dies during it, the one event it carried is known to be the cause).

export class QuarantineGate {
  private active = 0;
  private exclusivePending = 0;
  private readonly idle: Array<() => void> = [];
  private readonly open: Array<() => void> = [];
  private chain: Promise<unknown> = Promise.resolve();

  /** Runs fn alongside other shared calls; waits while quarantine reruns are queued or running. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusivePending > 0) await new Promise<void>((resolve) => this.open.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      if (--this.active === 0) wakeAll(this.idle);
    }
  }

  /** Runs fn alone: after the shared calls in flight have ended, one exclusive run after another. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.exclusivePending++;
    const run = this.chain.then(async () => {
      while (this.active > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
      try {
        return await fn();
      } finally {
        if (--this.exclusivePending === 0) wakeAll(this.open);
      }
    });
    this.chain = run.catch(() => {});
    return run;
  }
}

function wakeAll(waiters: Array<() => void>): void {
  for (const wake of waiters.splice(0)) wake();
}
