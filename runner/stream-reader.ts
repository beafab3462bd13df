// Reads the stored messages of one subject of a stream, oldest first: those stored when the read began, each
// once. Used by `dfn deliveries` and `dfn replay`, which inspect an instance's records and dead letters.

import { type JetStreamManager, type MsgRequest, NatsError } from 'nats';

export interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
}

const STREAM_NOT_FOUND = 10059;
const NO_MESSAGE_FOUND = 10037;

export class StreamNotFoundError extends Error {
  override readonly name = 'StreamNotFoundError';
  readonly code = 'DFN_STREAM_NOT_FOUND';
  constructor(readonly stream: string) {
    super(`NATS has no stream ${stream}: is the prefix right, and is the platform installed on this NATS?`);
  }
}

function isApiError(err: unknown, code: number): boolean {
  return err instanceof NatsError && err.api_error?.err_code === code;
}

async function subjectState(jsm: JetStreamManager, stream: string, subject: string) {
  try {
    const info = await jsm.streams.info(stream, { subjects_filter: subject });
    return { count: info.state.subjects?.[subject] ?? 0, lastSeq: info.state.last_seq };
  } catch (err) {
    if (isApiError(err, STREAM_NOT_FOUND)) throw new StreamNotFoundError(stream);
    throw err;
  }
}

/** How many messages a stream holds on one subject. */
export async function countSubject(jsm: JetStreamManager, stream: string, subject: string): Promise<number> {
  return (await subjectState(jsm, stream, subject)).count;
}

/**
 * One request per message ("the next on this subject at or after seq"), so what is yielded never depends on
 * how fast the caller takes it: a consumer's fetch ends when its messages have arrived, and messages that
 * arrived while the caller was busy were lost with it. Stops at the last sequence stored when it began, so
 * messages added meanwhile (a replayed event dead-lettered again) are not read in the same pass.
 */
export async function* readSubject(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
): AsyncGenerator<StoredMessage> {
  const { count, lastSeq } = await subjectState(jsm, stream, subject);
  if (count === 0) return;
  let seq = 1;
  while (seq <= lastSeq) {
    let m: Awaited<ReturnType<JetStreamManager['streams']['getMessage']>>;
    try {
      // The client's type lacks next_by_subj; the server's STREAM.MSG.GET takes it.
      m = await jsm.streams.getMessage(stream, { seq, next_by_subj: subject } as unknown as MsgRequest);
    } catch (err) {
      if (isApiError(err, NO_MESSAGE_FOUND)) return;
      throw err;
    }
    if (m.seq > lastSeq) return;
    yield { seq: m.seq, subject: m.subject, data: m.data };
    seq = m.seq + 1;
  }
}
