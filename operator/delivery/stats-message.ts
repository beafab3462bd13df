// Reads one message from the runner stats subjects. Anyone allowed to publish there can send anything, so
// every message is checked before it counts: size, JSON, the shape of api/jetstream.ts, and its subject.

import {
  type RunnerStatsMessage,
  RunnerStatsSchema,
  statsSubject,
  type Topology,
} from '../../api/jetstream.js';

/** A runner's message is about 1 KiB (its lastError at most 512 characters): far more is not a runner. */
export const MAX_STATS_MESSAGE_BYTES = 16 * 1024;

export const StatsRejections = {
  Oversized: 'oversized',
  NotJson: 'not_json',
  Invalid: 'invalid',
  /** The message names another instance than its subject: a publisher allowed on one subject lying. */
  SubjectMismatch: 'subject_mismatch',
} as const;

export type StatsRejection = (typeof StatsRejections)[keyof typeof StatsRejections];

export type ParsedStats =
  | { ok: true; stats: RunnerStatsMessage }
  | { ok: false; reason: StatsRejection; detail: string };

const decoder = new TextDecoder();

export function parseStatsMessage(t: Topology, subject: string, data: Uint8Array): ParsedStats {
  if (data.length > MAX_STATS_MESSAGE_BYTES) {
    return { ok: false, reason: StatsRejections.Oversized, detail: `${data.length} bytes` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch (err) {
    return { ok: false, reason: StatsRejections.NotJson, detail: (err as Error).message };
  }
  const parsed = RunnerStatsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      reason: StatsRejections.Invalid,
      detail: issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid',
    };
  }
  const stats = parsed.data;
  let expected: string;
  try {
    expected = statsSubject(t, stats.instance);
  } catch (err) {
    return { ok: false, reason: StatsRejections.Invalid, detail: (err as Error).message };
  }
  if (expected !== subject) {
    return { ok: false, reason: StatsRejections.SubjectMismatch, detail: `${subject} carries ${expected}` };
  }
  return { ok: true, stats };
}
