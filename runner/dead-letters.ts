// Dead letters: events whose attempts ran out (or that crashed too often), kept per instance in the dead-letter
// stream, and their replay to that instance alone (its replay subject), each removed once JetStream has it back.

import { headers, type JetStreamClient, type JetStreamManager } from 'nats';
import {
  type DeadLetter,
  type DeliveryHistory,
  deadLetterSubject,
  type InstanceRef,
  replaySubject,
  type Topology,
} from '../api/jetstream.js';
import type { ErrorType } from '../api/outcome.js';
import { readSubject } from './stream-reader.js';

/** The copy being dead-lettered, as the consumer delivered it or as the advisory path read it from the stream. */
export interface DeadLetterInput {
  instance: InstanceRef;
  replica: string;
  revision: string;
  data: Uint8Array;
  subject: string;
  /** Its sequence in the events stream: one dead letter per copy (the DLQ dedupes on it). */
  seq: number;
  /** When the copy entered the events stream, ISO 8601. */
  publishedAt: string;
  history: DeliveryHistory;
  lastError: { errorType: ErrorType; message: string };
}

export function nanosToIso(nanos: number): string {
  return new Date(Math.floor(nanos / 1e6)).toISOString();
}

/** The dead letter of a copy: the event as published (before data control), with its history. */
export function buildDeadLetter(input: DeadLetterInput): DeadLetter {
  return {
    instance: input.instance,
    replica: input.replica,
    revision: input.revision,
    event: JSON.parse(new TextDecoder().decode(input.data)),
    subject: input.subject,
    streamSequence: input.seq,
    lastError: input.lastError,
    attempts: input.history.attempt,
    crashes: input.history.crashes,
    publishedAt: input.publishedAt,
    deadLetteredAt: new Date().toISOString(),
  };
}

/**
 * Publishes a dead letter and waits for JetStream to store it. The id makes a second publish of the same
 * copy (a runner killed between publish and term, or the runner and the advisory path both) a no-op.
 */
export async function publishDeadLetter(
  js: JetStreamClient,
  topology: Topology,
  deadLetter: DeadLetter,
  timeoutMs = 5000,
): Promise<void> {
  await js.publish(deadLetterSubject(topology, deadLetter.instance), JSON.stringify(deadLetter), {
    msgID: `dlq-${deadLetter.instance.namespace}-${deadLetter.instance.name}-${deadLetter.streamSequence}`,
    timeout: timeoutMs,
  });
}

export interface StoredDeadLetter {
  /** Sequence in the dead-letter stream (what replay deletes). */
  seq: number;
  deadLetter: DeadLetter;
}

/** An instance's dead letters, oldest first; only those stored when the read began. */
export async function* readDeadLetters(
  jsm: JetStreamManager,
  topology: Topology,
  ref: InstanceRef,
): AsyncGenerator<StoredDeadLetter> {
  for await (const m of readSubject(jsm, topology.deadLetterStream, deadLetterSubject(topology, ref))) {
    let deadLetter: DeadLetter;
    try {
      deadLetter = JSON.parse(new TextDecoder().decode(m.data)) as DeadLetter;
    } catch {
      continue;
    }
    if (deadLetter && typeof deadLetter === 'object' && deadLetter.event) yield { seq: m.seq, deadLetter };
  }
}

export interface ReplayOptions {
  /** Only these messageIds; all dead letters of the instance when absent. */
  messageIds?: readonly string[];
  /** Leave replayed dead letters in the stream. */
  keep?: boolean;
  /** Report what would be replayed, publish nothing. */
  dryRun?: boolean;
}

export interface ReplayFailure {
  stored: StoredDeadLetter;
  error: string;
}

export interface ReplayResult {
  /** Dead letters chosen (all, or those with a requested messageId): replayed + failed. */
  selected: number;
  replayed: StoredDeadLetter[];
  /** Selected dead letters whose publish failed; they stay in the dead-letter stream. */
  failed: ReplayFailure[];
  /** Replayed, but still in the dead-letter stream (its removal failed; a second replay within the window is a no-op). */
  notRemoved: StoredDeadLetter[];
  /** Requested messageIds with no dead letter. */
  notFound: string[];
  subject: string;
}

/** Publishes in flight at once: a replay of thousands takes round trips in parallel, not one by one. */
const REPLAY_WINDOW = 64;

export function messageIdOf(stored: StoredDeadLetter): string {
  return typeof stored.deadLetter.event.messageId === 'string' ? stored.deadLetter.event.messageId : '';
}

/**
 * Re-publishes an instance's dead letters for delivery to that instance, with a fresh set of attempts (no
 * history headers). Only the dead letters stored when it began are read, so one that is dead-lettered again
 * while the replay runs is not replayed twice. Every selected dead letter is accounted for in the result.
 */
export async function replayDeadLetters(
  js: JetStreamClient,
  jsm: JetStreamManager,
  topology: Topology,
  ref: InstanceRef,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const wanted = options.messageIds?.length ? new Set(options.messageIds) : undefined;
  const found = new Set<string>();
  const subject = replaySubject(topology, ref);
  const result: ReplayResult = {
    selected: 0,
    replayed: [],
    failed: [],
    notRemoved: [],
    notFound: [],
    subject,
  };
  const inFlight = new Set<Promise<void>>();

  const replayOne = async (stored: StoredDeadLetter): Promise<void> => {
    const h = headers();
    h.set('Dfn-Replay-Of', String(stored.seq));
    try {
      // Keyed by the dead letter's sequence: replaying it twice within the window delivers it once.
      await js.publish(subject, JSON.stringify(stored.deadLetter.event), {
        msgID: `replay-${topology.deadLetterStream}-${stored.seq}`,
        headers: h,
      });
    } catch (err) {
      result.failed.push({ stored, error: (err as Error).message });
      return;
    }
    result.replayed.push(stored);
    if (options.keep) return;
    try {
      await jsm.streams.deleteMessage(topology.deadLetterStream, stored.seq, false);
    } catch {
      result.notRemoved.push(stored);
    }
  };

  for await (const stored of readDeadLetters(jsm, topology, ref)) {
    const messageId = messageIdOf(stored);
    if (wanted && !wanted.has(messageId)) continue;
    found.add(messageId);
    result.selected++;
    if (options.dryRun) {
      result.replayed.push(stored);
      continue;
    }
    const p = replayOne(stored).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= REPLAY_WINDOW) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const bySeq = (a: StoredDeadLetter, b: StoredDeadLetter) => a.seq - b.seq;
  result.replayed.sort(bySeq);
  result.notRemoved.sort(bySeq);
  result.failed.sort((a, b) => a.stored.seq - b.stored.seq);
  result.notFound = wanted ? [...wanted].filter((id) => !found.has(id)) : [];
  return result;
}
