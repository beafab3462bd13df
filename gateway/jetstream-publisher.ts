// JetStream publishing with acknowledgements correlated on one reply inbox. The nats.js request path
// builds a timer, a deferred and two Error objects per publish; at gateway rates that is a third of
// the CPU, so acks are matched by reply-subject suffix here and timeouts swept by one interval.

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

const decoder = new TextDecoder();

export class JetStreamPublisher {
  private readonly inbox = createInbox();
  private readonly sub: Subscription;
  private readonly pending = new Map<number, Pending>();
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

  publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck> {
    const id = ++this.seq;
    const h = headers();
    h.set('Nats-Msg-Id', msgId);
    return new Promise<PubAck>((resolve, reject) => {
      try {
        this.nc.publish(subject, data, { reply: `${this.inbox}.${id}`, headers: h });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        reject(new PublishError(e.message ?? String(err), e.code ?? 'PUBLISH'));
        return;
      }
      this.pending.set(id, { resolve, reject, deadline: performance.now() + this.timeoutMs });
    });
  }

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
