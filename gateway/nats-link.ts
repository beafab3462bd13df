// The gateway's NATS connection: established in the background and followed through reconnects, so
// the HTTP side can answer at once (503, not a hang) while NATS is away and /readyz can tell the truth.

import { connect, credsAuthenticator, type NatsConnection } from 'nats';
import { natsUrlCredentials } from '../lib/nats-url.js';
import { JetStreamPublisher } from './jetstream-publisher.js';

export type LinkState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface NatsLinkOptions {
  /** One URL or several, comma-separated (a cluster's seed servers). */
  servers: string | string[];
  /** Contents of a NATS .creds file (JWT + NKey seed), when the server requires it. */
  creds?: Uint8Array;
  /** Connection name shown by the server (`nats server report connections`). */
  name?: string;
  /** Wait between reconnect attempts (ms). */
  reconnectWaitMs?: number;
  /** How long a publish may wait for JetStream's acknowledgement (ms). */
  publishTimeoutMs: number;
  onStateChange?: (state: LinkState, detail?: string) => void;
  /** Each failed attempt to reach NATS before the first connection. */
  onConnectError?: (err: Error) => void;
}

export class NatsLink {
  private nc: NatsConnection | undefined;
  private publisherValue: JetStreamPublisher | undefined;
  private stateValue: LinkState = 'connecting';
  private readonly ready: Promise<NatsConnection>;
  private closing = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeRetry: (() => void) | undefined;

  constructor(private readonly options: NatsLinkOptions) {
    this.ready = this.firstConnect();
    // Callers that never await `connected()` must not see an unhandled rejection after close().
    this.ready.catch(() => {});
  }

  private servers(): string[] {
    const { servers } = this.options;
    return Array.isArray(servers)
      ? servers
      : servers
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  }

  /**
   * Our own first-connect loop rather than the client's waitOnFirstConnect: that one cannot be
   * cancelled, and a gateway asked to stop before NATS ever came up must still exit.
   */
  private async firstConnect(): Promise<NatsConnection> {
    const wait = this.options.reconnectWaitMs ?? 2000;
    for (;;) {
      if (this.closing) throw new Error('closed before NATS was reached');
      try {
        const nc = await connect({
          ...natsUrlCredentials(this.servers()),
          name: this.options.name ?? 'dfn-gateway',
          maxReconnectAttempts: -1,
          reconnectTimeWait: wait,
          timeout: Math.max(wait, 2000),
          // Otherwise nats.js captures a stack trace per request for error reports we never read
          // (failures become catalogue codes); at gateway rates that is measurable CPU.
          noAsyncTraces: true,
          ...(this.options.creds ? { authenticator: credsAuthenticator(this.options.creds) } : {}),
        });
        if (this.closing) {
          await nc.close();
          throw new Error('closed before NATS was reached');
        }
        this.nc = nc;
        this.publisherValue = new JetStreamPublisher(nc, this.options.publishTimeoutMs);
        this.setState('connected', nc.getServer());
        void this.follow(nc);
        return nc;
      } catch (err) {
        if (this.closing) throw err;
        this.setState('connecting', (err as Error).message);
        this.options.onConnectError?.(err as Error);
        await new Promise<void>((resolve) => {
          this.wakeRetry = resolve;
          this.retryTimer = setTimeout(resolve, wait);
        });
      }
    }
  }

  private setState(state: LinkState, detail?: string): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.options.onStateChange?.(state, detail);
  }

  private async follow(nc: NatsConnection): Promise<void> {
    void nc.closed().then((err) => this.setState('closed', err?.message));
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.setState('disconnected', String(s.data));
        // Acks of what was in flight may never arrive; the clients are told to resend now.
        this.publisherValue?.failAll('DISCONNECT', 'disconnected from NATS before JetStream acknowledged');
      } else if (s.type === 'reconnect') this.setState('connected', String(s.data));
    }
  }

  get state(): LinkState {
    return this.stateValue;
  }

  /** The publisher while connected and able to receive acks; undefined means "answer 503 now". */
  get publisher(): JetStreamPublisher | undefined {
    if (this.stateValue !== 'connected' || this.publisherValue?.inboxError) return undefined;
    return this.publisherValue;
  }

  /** Why the gateway cannot publish although connected, if it cannot. */
  get publishProblem(): string | undefined {
    return this.publisherValue?.inboxError;
  }

  /** Fails every publish still awaiting its ack (a shutdown that cannot wait any longer). */
  failPending(code: string, message: string): void {
    this.publisherValue?.failAll(code, message);
  }

  /** Resolves with the connection once it is first established. */
  connected(): Promise<NatsConnection> {
    return this.ready;
  }

  /** Flushes what was published and closes; a connection still being attempted is abandoned. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    const nc = this.nc;
    if (!nc) {
      this.setState('closed');
      return;
    }
    if (!nc.isClosed()) {
      // Drain first: acks of publishes still in flight arrive on the reply subscription.
      await nc.drain().catch(() => nc.close());
    }
    this.publisherValue?.close();
    this.setState('closed');
  }
}
