// Reads the stored messages of one subject of a stream, oldest first, through an ordered consumer.
// Used by `dfn deliveries` and `dfn replay`, which inspect an instance's records and dead letters.

import { type JetStreamClient, type JetStreamManager, NatsError } from 'nats';

export interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
}

const STREAM_NOT_FOUND = 10059;

export class StreamNotFoundError extends Error {
  override readonly name = 'StreamNotFoundError';
  constructor(readonly stream: string) {
    super(`NATS has no stream ${stream}: is the prefix right, and is the platform installed on this NATS?`);
  }
}

/** How many messages a stream holds on one subject. */
export async function countSubject(jsm: JetStreamManager, stream: string, subject: string): Promise<number> {
  try {
    const info = await jsm.streams.info(stream, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  } catch (err) {
    if (err instanceof NatsError && err.api_error?.err_code === STREAM_NOT_FOUND)
      throw new StreamNotFoundError(stream);
    throw err;
  }
}

export async function* readSubject(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  subject: string,
): AsyncGenerator<StoredMessage> {
  // Counting first avoids opening a consumer (and waiting out a fetch) for an empty subject.
  if ((await countSubject(jsm, stream, subject)) === 0) return;
  const consumer = await js.consumers.get(stream, { filterSubjects: [subject] });
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 256, expires: 2000 });
    let received = 0;
    let pending = -1;
    for await (const m of batch) {
      received++;
      pending = m.info.pending;
      yield { seq: m.seq, subject: m.subject, data: m.data };
      // Stop at the last stored message instead of waiting for the fetch to expire.
      if (pending === 0) break;
    }
    if (received === 0 || pending === 0) {
      batch.stop();
      return;
    }
  }
}
