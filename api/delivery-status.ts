// The delivery part of a FunctionInstance's status, defined against what runners report (RunnerCounters in
// api/jetstream.ts) and what JetStream knows (the instance's consumers): each field, and when Healthy flips.

import type { RunnerCounters } from './jetstream.js';

/**
 * What one runner process has done so far, in the terms of the status. Each field is a sum of that process's
 * counters, so it only grows while the process lives; a new process starts again at zero.
 */
export interface DeliveryTally {
  /** `status.delivered`: events the function handled successfully (`delivered`). */
  delivered: number;
  /**
   * `status.failed`: events that failed for good, i.e. discarded (an error that is not retried, every error
   * type) or dead-lettered (attempts or crashes used up, also from the max_deliver advisory).
   */
  failed: number;
  /** `status.deadLettered`: events put in the dead-letter stream (`deadLettered` + `deadLetteredFromAdvisory`). */
  deadLettered: number;
  /** `status.filtered`: events stopped by destination filters or `integrations` (`filtered`). */
  filtered: number;
  /** Not in status, for Healthy: attempts that ended (delivered, retried, discarded, dead-lettered). */
  attempts: number;
  /** Not in status, for Healthy: those of them that failed (retried, discarded, dead-lettered). */
  failedAttempts: number;
}

export const TALLY_FIELDS = [
  'delivered',
  'failed',
  'deadLettered',
  'filtered',
  'attempts',
  'failedAttempts',
] as const satisfies readonly (keyof DeliveryTally)[];

/** The counts a status keeps (the rest of the tally feeds Healthy). */
export const STATUS_COUNT_FIELDS = ['delivered', 'failed', 'deadLettered', 'filtered'] as const;
export type StatusCounts = Pick<DeliveryTally, (typeof STATUS_COUNT_FIELDS)[number]>;

/** The counters a tally is made of (a RunnerCounters, or a parsed stats message's, whose discards may name any type). */
export type TalliedCounters = Pick<
  RunnerCounters,
  'delivered' | 'filtered' | 'retried' | 'deadLettered' | 'deadLetteredFromAdvisory'
> & { discarded: Readonly<Record<string, number | undefined>> };

export function deliveryTally(c: TalliedCounters): DeliveryTally {
  let discarded = 0;
  for (const n of Object.values(c.discarded)) discarded += n ?? 0;
  const deadLettered = c.deadLettered + c.deadLetteredFromAdvisory;
  const failed = discarded + deadLettered;
  return {
    delivered: c.delivered,
    failed,
    deadLettered,
    filtered: c.filtered,
    attempts: c.delivered + c.retried + failed,
    failedAttempts: c.retried + failed,
  };
}

// The two fields that are not counts of what happened but of what is waiting now, read from JetStream:
// - `status.retrying`: events waiting for their next attempt = the message schedules of the instance in the
//   retry stream (`num_pending` of its retry-count consumer, instanceRetryCountConsumerConfig). A counter
//   difference (retried minus retries received) would drift with every runner killed between the two.
// - `status.backlog`: events waiting in the instance consumer, not yet delivered to a runner (its
//   `num_pending`): what to scale replicas on.

/** Segment's Connection Health, as the `Healthy` condition: judged on the failure ratio of recent attempts. */
export interface HealthPolicy {
  /** The window attempts are counted over (Segment's Delivery Overview looks back 5 minutes). */
  windowMs: number;
  /** Fewer attempts than this in the window: too few to judge, Healthy stays as it was. */
  minAttempts: number;
  /** Healthy turns False when more than this share of the window's attempts failed. */
  unhealthyRatio: number;
  /** …and True again when at most this share did (lower, so a ratio near the threshold does not flap). */
  healthyRatio: number;
}

export const DEFAULT_HEALTH_POLICY: HealthPolicy = Object.freeze({
  windowMs: 5 * 60_000,
  minAttempts: 20,
  unhealthyRatio: 0.5,
  healthyRatio: 0.25,
});

export const HealthReasons = {
  DeliveriesFailing: 'DeliveriesFailing',
  DeliveriesSucceeding: 'DeliveriesSucceeding',
} as const;

export interface HealthJudgement {
  status: boolean;
  reason: string;
  message: string;
}

/**
 * Healthy from the window's attempts and the previous judgement; undefined while there were never enough
 * attempts to judge. The message depends only on the verdict, so an unchanged verdict is an unchanged status.
 */
export function judgeHealth(
  policy: HealthPolicy,
  window: { attempts: number; failedAttempts: number },
  previous: HealthJudgement | undefined,
): HealthJudgement | undefined {
  if (window.attempts < policy.minAttempts) return previous;
  const ratio = window.failedAttempts / window.attempts;
  const failing = previous?.status === false ? ratio > policy.healthyRatio : ratio > policy.unhealthyRatio;
  const status = !failing;
  if (previous?.status === status) return previous;
  return { status, ...healthText(policy, status) };
}

function healthText(policy: HealthPolicy, healthy: boolean): { reason: string; message: string } {
  const window = formatDuration(policy.windowMs);
  const pct = (r: number) => `${Math.round(r * 100)}%`;
  return healthy
    ? {
        reason: HealthReasons.DeliveriesSucceeding,
        message:
          `delivery attempts succeed (False when more than ${pct(policy.unhealthyRatio)} of at least ` +
          `${policy.minAttempts} attempts fail within ${window})`,
      }
    : {
        reason: HealthReasons.DeliveriesFailing,
        message:
          `more than ${pct(policy.unhealthyRatio)} of delivery attempts failed within ${window} ` +
          `(True again at ${pct(policy.healthyRatio)} or less); see lastError`,
      };
}

function formatDuration(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
