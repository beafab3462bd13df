// JetStream publishing with acknowledgements correlated on one reply inbox. The nats.js request path
// builds a timer, a deferred and two Error objects per publish; at gateway rates that is a third of
// the CPU, so acks are matched by reply-subject suffix here and timeouts swept by one interval.
// Publishes of one event-loop turn go out together, so many single-event requests cost one socket write.

import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from 'nats';

/** JetStream's answer to a publish (the fields we use). */
export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/**
 * Why a publish failed, in the vocabulary publish.ts classifies: `code` mirrors nats.js error codes
 * ('503' no responders, 'TIMEOUT', 'DISCONNECT'), `api_error` is JetStream's own error object.
 */
export class PublishError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly api_error?: { code: number; err_code: number; description: string },
  ) {
    super(message);
    this.name = 'PublishError';
  }
}

interface Pending {
  resolve: (ack: PubAck) => void;
  reject: (err: PublishError) => void;
  deadline: number;
}

interface Queued {
  id: number;
  subject: string;
  data: Uint8Array;
  msgId: string;
}

const decoder = new TextDecoder();

export class JetStreamPublisher {
  private readonly inbox = createInbox();
  private readonly sub: Subscription;
  private readonly pending = new Map<number, Pending>();
  /** Publishes waiting for the end of this event-loop turn (the check phase), in publish order. */
  private queued: Queued[] = [];
  private seq = 0;
  private readonly sweeper: NodeJS.Timeout;
  /** Why acks cannot arrive (the reply inbox denied by NATS permissions); set until the process restarts. */
  inboxError: string | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    // The subscription is restored by the client after a reconnect, like any other. An error (the inbox
    // denied by NATS permissions) comes with an empty message, and nats.js stops reading the connection
    // for good if a callback throws: remember it instead, so the gateway reports itself unready.
    this.sub = nc.subscribe(`${this.inbox}.*`, {
      callback: (err, msg) => {
        if (err)
          this.inboxError = `cannot receive JetStream acknowledgements on ${this.inbox}.*: ${err.message}`;
        else this.onAck(msg);
      },
    });
    this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(250, timeoutMs / 10)));
    this.sweeper.unref();
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends at the end of the current event-loop turn rather than now. nats.js writes its buffer once per
   * microtask turn, and each HTTP request is handled in a turn of its own: published at once, a thousand
   * single-event requests a second were a thousand socket writes to nats-server, the largest cost of the
   * gateway's thread under load (a write on loopback runs the receiver's TCP path and often yields the
   * core to it). Requests read in the same poll phase now share one write; the wait is the rest of that
   * turn, and it grows only when the gateway is behind, which is when sharing saves the most.
   */
  publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck> {
    const id = ++this.seq;
    return new Promise<PubAck>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: performance.now() + this.timeoutMs });
      if (this.queued.push({ id, subject, data, msgId }) === 1) setImmediate(this.sendQueued);
    });
  }

  private readonly sendQueued = (): void => {
    const queued = this.queued;
    this.queued = [];
    for (const q of queued) {
      // Failed meanwhile (a disconnect, close, or its deadline): nothing waits for its ack any more.
      if (!this.pending.has(q.id)) continue;
      const h = headers();
      h.set('Nats-Msg-Id', q.msgId);
      try {
        this.nc.publish(q.subject, q.data, { reply: `${this.inbox}.${q.id}`, headers: h });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        const p = this.pending.get(q.id)!;
        this.pending.delete(q.id);
        p.reject(new PublishError(e.message ?? String(err), e.code ?? 'PUBLISH'));
      }
    }
  };

  private onAck(msg: Msg): void {
    const id = Number(msg.subject.slice(this.inbox.length + 1));
    const p = this.pending.get(id);
    if (!p) return; // timed out already, or failed on disconnect
    this.pending.delete(id);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      p.reject(new PublishError('no responders: no stream listens on this subject', '503'));
      return;
    }
    let ack: { stream?: string; seq?: number; duplicate?: boolean; error?: PublishError['api_error'] };
    try {
      ack = JSON.parse(decoder.decode(msg.data));
    } catch {
      p.reject(new PublishError('unreadable acknowledgement', 'BAD_ACK'));
      return;
    }
    if (ack.error) {
      p.reject(new PublishError(ack.error.description, String(ack.error.code), ack.error));
      return;
    }
    if (!ack.stream) {
      p.reject(new PublishError('acknowledgement without a stream', 'BAD_ACK'));
      return;
    }
    p.resolve({ stream: ack.stream, seq: ack.seq ?? 0, duplicate: ack.duplicate === true });
  }

  /** Entries are in publish order with one timeout, so expired ones are always at the front. */
  private sweep(): void {
    const now = performance.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) break;
      this.pending.delete(id);
      p.reject(new PublishError(`no acknowledgement within ${this.timeoutMs} ms`, 'TIMEOUT'));
    }
  }

  /** Fails every publish still waiting: after a disconnect their acks may never come. */
  failAll(code: string, message: string): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(new PublishError(message, code));
  }

  close(): void {
    clearInterval(this.sweeper);
    this.failAll('CONNECTION_CLOSED', 'the NATS connection closed');
    this.sub.unsubscribe();
  }
}
