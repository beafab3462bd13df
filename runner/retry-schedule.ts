// When a retryable failure is attempted again: Segment's randomized exponential schedule, or an instance's own.
// The attempt number always comes from the message's delivery count, so the schedule survives runner restarts.

import type { RetryConfig } from '../api/runner-config.js';

export class RetrySchedule {
  constructor(
    private readonly config: RetryConfig,
    private readonly random: () => number = Math.random,
  ) {}

  get maxAttempts(): number {
    return this.config.maxAttempts;
  }

  /** Whether a failure of attempt `attempt` (1-based) may be attempted again. */
  hasAttemptAfter(attempt: number): boolean {
    return attempt < this.config.maxAttempts;
  }

  /** The delay before the attempt following `attempt`, without jitter. */
  baseDelayAfter(attempt: number): number {
    const { delaysMs, initialDelayMs, multiplier, maxDelayMs } = this.config;
    const n = Math.max(1, attempt);
    if (delaysMs) return delaysMs[Math.min(n, delaysMs.length) - 1]!;
    return Math.min(maxDelayMs, initialDelayMs * multiplier ** (n - 1));
  }

  /** The delay before the attempt following `attempt`, randomized within ±jitter (spreads retry storms). */
  delayAfter(attempt: number): number {
    const base = this.baseDelayAfter(attempt);
    const factor = 1 - this.config.jitter + 2 * this.config.jitter * this.random();
    return Math.round(base * factor);
  }

  /** Expected time from the first to the last attempt when every attempt fails (ms). */
  expectedSpanMs(): number {
    let total = 0;
    for (let a = 1; a < this.config.maxAttempts; a++) total += this.baseDelayAfter(a);
    return total;
  }
}
