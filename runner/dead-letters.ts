// Dead letters: events whose attempts ran out, kept per instance in the dead-letter stream, and their replay
// to that instance alone (its replay subject), removing each from the stream once JetStream has it back.

import { headers, type JetStreamClient, type JetStreamManager, type JsMsg } from 'nats';
import {
  type DeadLetter,
  deadLetterSubject,
  type InstanceRef,
  replaySubject,
  type Topology,
} from '../api/jetstream.js';
import type { ErrorType } from '../api/outcome.js';
import { readSubject } from './stream-reader.js';

export interface DeadLetterInput {
  instance: InstanceRef;
  replica: string;
  revision: string;
  msg: JsMsg;
  lastError: { errorType: ErrorType; message: string };
}

export function nanosToIso(nanos: number): string {
  return new Date(Math.floor(nanos / 1e6)).toISOString();
}

/** The dead letter of a message: the event as published (before data control), with its history. */
export function buildDeadLetter(input: DeadLetterInput): DeadLetter {
  const { msg } = input;
  return {
    instance: input.instance,
    replica: input.replica,
    revision: input.revision,
    event: JSON.parse(new TextDecoder().decode(msg.data)),
    subject: msg.subject,
    streamSequence: msg.seq,
    lastError: input.lastError,
    attempts: msg.info.deliveryCount,
    publishedAt: nanosToIso(msg.info.timestampNanos),
    deadLetteredAt: new Date().toISOString(),
  };
}

/**
 * Publishes a dead letter and waits for JetStream to store it. The id makes a second publish of the same
 * message (a runner killed between publish and term) a no-op within the stream's duplicate window.
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

export async function* readDeadLetters(
  js: JetStreamClient,
  jsm: JetStreamManager,
  topology: Topology,
  ref: InstanceRef,
): AsyncGenerator<StoredDeadLetter> {
  for await (const m of readSubject(js, jsm, topology.deadLetterStream, deadLetterSubject(topology, ref))) {
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

export interface ReplayResult {
  replayed: StoredDeadLetter[];
  /** Requested messageIds with no dead letter. */
  notFound: string[];
  subject: string;
}

/** Re-publishes an instance's dead letters for delivery to that instance, with a fresh set of attempts. */
export async function replayDeadLetters(
  js: JetStreamClient,
  jsm: JetStreamManager,
  topology: Topology,
  ref: InstanceRef,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const wanted = options.messageIds?.length ? new Set(options.messageIds) : undefined;
  const found = new Set<string>();
  const replayed: StoredDeadLetter[] = [];
  const subject = replaySubject(topology, ref);
  for await (const stored of readDeadLetters(js, jsm, topology, ref)) {
    const messageId =
      typeof stored.deadLetter.event.messageId === 'string' ? stored.deadLetter.event.messageId : '';
    if (wanted && !wanted.has(messageId)) continue;
    found.add(messageId);
    if (!options.dryRun) {
      const h = headers();
      h.set('Dfn-Replay-Of', String(stored.seq));
      // Keyed by the dead letter's sequence: replaying it twice within the window delivers it once.
      await js.publish(subject, JSON.stringify(stored.deadLetter.event), {
        msgID: `replay-${topology.deadLetterStream}-${stored.seq}`,
        headers: h,
      });
      if (!options.keep) await jsm.streams.deleteMessage(topology.deadLetterStream, stored.seq, false);
    }
    replayed.push(stored);
  }
  return { replayed, notFound: wanted ? [...wanted].filter((id) => !found.has(id)) : [], subject };
}
