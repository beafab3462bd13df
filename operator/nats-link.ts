// The operator's NATS connection, kept in the background: reconciles go on while NATS is away (instances
// report NatsUnavailable and are retried), and each (re)connection brings the streams up to date first.

import { type ConnectionOptions, connect, type JetStreamManager, type NatsConnection } from 'nats';
import type { Logger } from 'pino';

export class NatsUnavailableError extends Error {
  override readonly name = 'NatsUnavailableError';
  readonly code = 'DFN_NATS_UNAVAILABLE';
}

export interface NatsLinkOptions {
  connection: ConnectionOptions;
  log: Logger;
  /** Wait between attempts to connect, and to set up after connecting (ms). */
  retryMs?: number;
  /** After each (re)connection, before the link counts as ready: ensure the streams. Retried until it succeeds. */
  onConnected: (nc: NatsConnection, jsm: JetStreamManager) => Promise<void>;
}

export class NatsLink {
  private nc: NatsConnection | undefined;
  private jsmValue: JetStreamManager | undefined;
  private readyValue = false;
  private problemValue = 'not connected yet';
  private closing = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private settingUp: Promise<void> | undefined;

  constructor(private readonly options: NatsLinkOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Connected, and the streams are set up. */
  get ready(): boolean {
    return this.readyValue;
  }

  /** Why not ready. */
  get problem(): string {
    return this.problemValue;
  }

  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  /** The JetStream manager while ready; NatsUnavailableError otherwise (the caller retries with backoff). */
  jsm(): JetStreamManager {
    if (!this.readyValue || !this.jsmValue)
      throw new NatsUnavailableError(`NATS is not available: ${this.problemValue}`);
    return this.jsmValue;
  }

  private sleep(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      setTimeout(resolve, this.options.retryMs ?? 2000).unref();
    });
  }

  private async run(): Promise<void> {
    const { log } = this.options;
    while (!this.closing && !this.nc) {
      try {
        const nc = await connect({
          name: 'dfn-operator',
          maxReconnectAttempts: -1,
          reconnectTimeWait: this.options.retryMs ?? 2000,
          timeout: 5000,
          ...this.options.connection,
        });
        if (this.closing) {
          await nc.close();
          return;
        }
        this.nc = nc;
        this.jsmValue = await nc.jetstreamManager();
      } catch (err) {
        this.problemValue = (err as Error).message;
        log.warn({ error: this.problemValue }, 'cannot reach NATS; retrying');
        await this.sleep();
      }
    }
    if (!this.nc) return;
    log.info({ server: this.nc.getServer() }, 'connected to NATS');
    // Not awaited: the status iterator does not end when the connection closes.
    void this.follow(this.nc);
    await this.setUpOnce();
  }

  private async follow(nc: NatsConnection): Promise<void> {
    const { log } = this.options;
    for await (const s of nc.status()) {
      if (this.closing) return;
      if (s.type === 'disconnect') {
        this.readyValue = false;
        this.problemValue = `disconnected from ${String(s.data)}`;
        log.warn({ server: String(s.data) }, 'disconnected from NATS');
      } else if (s.type === 'reconnect') {
        log.info({ server: String(s.data) }, 'reconnected to NATS');
        void this.setUpOnce();
      }
    }
  }

  private setUpOnce(): Promise<void> {
    this.settingUp ??= this.setUp().finally(() => {
      this.settingUp = undefined;
    });
    return this.settingUp;
  }

  /** The streams (and whatever else onConnected does), retried while connected. */
  private async setUp(): Promise<void> {
    while (!this.closing && this.nc && !this.nc.isClosed()) {
      try {
        await this.options.onConnected(this.nc, this.jsmValue!);
        this.readyValue = true;
        this.problemValue = '';
        return;
      } catch (err) {
        this.problemValue = `setting up JetStream failed: ${(err as Error).message}`;
        this.options.log.warn({ error: (err as Error).message }, 'setting up JetStream failed; retrying');
        await this.sleep();
      }
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.readyValue = false;
    this.wake?.();
    await this.loop;
    const nc = this.nc;
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }
}
