// What waits in JetStream for each instance: `num_pending` of every consumer of the events stream (backlog)
// and of the retry stream (retries waiting in their schedules), one paged listing per stream per poll.

import { type JetStreamManager, NatsError } from 'nats';
import type { Topology } from '../../api/jetstream.js';

const STREAM_NOT_FOUND = 10059;

/** num_pending by consumer name; an empty map when the stream does not exist (yet). */
export async function pendingByConsumer(jsm: JetStreamManager, stream: string): Promise<Map<string, number>> {
  const pending = new Map<string, number>();
  try {
    for await (const info of jsm.consumers.list(stream)) pending.set(info.name, info.num_pending);
  } catch (err) {
    if (err instanceof NatsError && err.api_error?.err_code === STREAM_NOT_FOUND) return pending;
    throw err;
  }
  return pending;
}

export interface WaitingCounts {
  /** The instance consumers' pending counts (events not yet delivered to a runner). */
  backlog: Map<string, number>;
  /** The retry-count consumers' pending counts (message schedules waiting). */
  retrying: Map<string, number>;
}

export async function waitingCounts(jsm: JetStreamManager, t: Topology): Promise<WaitingCounts> {
  const [backlog, retrying] = await Promise.all([
    pendingByConsumer(jsm, t.eventsStream),
    pendingByConsumer(jsm, t.retryStream),
  ]);
  return { backlog, retrying };
}
