// The attempts of the last `windowMs`, in a ring of buckets: what the Healthy condition is judged on.
// Constant memory per instance; old buckets fall out as time passes, with or without new attempts.

const BUCKETS = 10;

interface Bucket {
  index: number;
  attempts: number;
  failedAttempts: number;
}

export class HealthWindow {
  private readonly bucketMs: number;
  private readonly ring: Bucket[] = Array.from({ length: BUCKETS }, () => ({
    index: -1,
    attempts: 0,
    failedAttempts: 0,
  }));

  constructor(windowMs: number) {
    this.bucketMs = Math.max(1, Math.floor(windowMs / BUCKETS));
  }

  /** How often the window should be looked at again: when its oldest bucket falls out. */
  get tickMs(): number {
    return this.bucketMs;
  }

  add(nowMs: number, attempts: number, failedAttempts: number): void {
    if (attempts === 0 && failedAttempts === 0) return;
    const index = Math.floor(nowMs / this.bucketMs);
    const bucket = this.ring[index % BUCKETS]!;
    if (bucket.index !== index) Object.assign(bucket, { index, attempts: 0, failedAttempts: 0 });
    bucket.attempts += attempts;
    bucket.failedAttempts += failedAttempts;
  }

  totals(nowMs: number): { attempts: number; failedAttempts: number } {
    const current = Math.floor(nowMs / this.bucketMs);
    let attempts = 0;
    let failedAttempts = 0;
    for (const b of this.ring) {
      if (b.index > current - BUCKETS && b.index <= current) {
        attempts += b.attempts;
        failedAttempts += b.failedAttempts;
      }
    }
    return { attempts, failedAttempts };
  }

  /** Nothing in the window any more: looking again cannot change a verdict. */
  isEmpty(nowMs: number): boolean {
    return this.totals(nowMs).attempts === 0;
  }
}
