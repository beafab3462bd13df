// The retry schedule: Segment's default span, per-instance overrides, and jitter bounds.

import { describe, expect, it } from 'vitest';
import { parseRunnerConfig, type RunnerConfigInput } from '../../api/runner-config.js';
import { RetrySchedule } from '../../runner/retry-schedule.js';

function retryConfig(retry: RunnerConfigInput['retry'] = {}) {
  return parseRunnerConfig({
    apiVersion: 'dfn.dev/v1alpha1',
    kind: 'RunnerConfig',
    instance: { namespace: 'default', name: 'crm', source: 'web' },
    function: { revision: '1' },
    retry,
  }).retry;
}

describe('RetrySchedule', () => {
  it("defaults to Segment's: 10 attempts spread over about four hours", () => {
    const schedule = new RetrySchedule(retryConfig());
    expect(schedule.maxAttempts).toBe(10);
    expect(schedule.hasAttemptAfter(9)).toBe(true);
    expect(schedule.hasAttemptAfter(10)).toBe(false);
    const hours = schedule.expectedSpanMs() / 3_600_000;
    expect(hours).toBeGreaterThan(3.5);
    expect(hours).toBeLessThan(4.5);
  });

  it('grows exponentially up to maxDelayMs', () => {
    const schedule = new RetrySchedule(retryConfig({ initialDelayMs: 100, multiplier: 3, maxDelayMs: 1000 }));
    expect([1, 2, 3, 4].map((a) => schedule.baseDelayAfter(a))).toEqual([100, 300, 900, 1000]);
  });

  it('uses explicit delays, repeating the last', () => {
    const schedule = new RetrySchedule(retryConfig({ delaysMs: [50, 200], jitter: 0 }));
    expect([1, 2, 3, 7].map((a) => schedule.delayAfter(a))).toEqual([50, 200, 200, 200]);
  });

  it('randomizes each delay within ±jitter', () => {
    const low = new RetrySchedule(retryConfig({ initialDelayMs: 1000, jitter: 0.2 }), () => 0);
    const high = new RetrySchedule(retryConfig({ initialDelayMs: 1000, jitter: 0.2 }), () => 0.999999);
    expect(low.delayAfter(1)).toBe(800);
    expect(high.delayAfter(1)).toBe(1200);
    const random = new RetrySchedule(retryConfig({ initialDelayMs: 1000, jitter: 0.2 }));
    const delays = Array.from({ length: 200 }, () => random.delayAfter(1));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(800);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1200);
    expect(new Set(delays).size).toBeGreaterThan(10);
  });
});
