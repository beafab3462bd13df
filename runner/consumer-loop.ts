// Pulls from the instance's durable consumer only as many messages as this replica has room for, so events
// never wait in a client buffer (burning ack_wait) and replicas share the consumer's max_ack_pending fairly.

import type { Consumer, FetchOptions, JsMsg } from 'nats';
import type { Logger } from '../lib/telemetry.js';
import type { InFlight } from './in-flight.js';

/**
 * A fetch whose messages are handed to a callback as the client parses them. nats.js takes `callback` on
 * every pull (its typings list it for consume() only): an async iterator costs a promise and two turns of
 * the event loop per message, which measured as about half the CPU of consuming an event (consume, parse
 * and ack 50,000 events: 31-39 µs per event iterated, 13-15 µs with the callback).
 */
type FetchWithCallback = FetchOptions & { callback: (msg: JsMsg) => void };

export interface ConsumerLoopOptions {
  /** Long-poll time of one pull request (ms, at least 1000). */
  expiresMs: number;
  /** Free slots needed before pulling again: avoids a round trip per settled event. */
  minRoom: number;
}

export class ConsumerLoop {
  private stopping = false;
  private running: Promise<void> | undefined;
  private wakeSleep: (() => void) | undefined;
  /** False after a failed pull, until a pull works again (readiness). */
  healthy = true;

  constructor(
    private readonly consumer: Consumer,
    private readonly inFlight: InFlight,
    private readonly onMessage: (msg: JsMsg) => void,
    private readonly log: Logger,
    private readonly options: ConsumerLoopOptions,
  ) {}

  start(): void {
    this.running ??= this.run();
  }

  /**
   * Stops pulling. The pull under way is not cut short: the server keeps sending what it was asked for
   * whatever the client does, and a message arriving after an unsubscribe would wait out its ack wait
   * unseen. So it runs to its end (all messages, or expiresMs) and every message is handed to onMessage.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.inFlight.wake();
    this.wakeSleep?.();
    await this.running;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      await this.inFlight.waitForRoom(this.options.minRoom);
      if (this.stopping) break;
      try {
        const messages = await this.consumer.fetch({
          max_messages: this.inFlight.free,
          expires: this.options.expiresMs,
          callback: this.onMessage,
        } as FetchWithCallback);
        // With a callback the pull ends by settling closed(): with the error that ended it, if one did.
        const failed = await messages.closed();
        if (failed) throw failed;
        if (failures > 0)
          this.log.info({ after: `${failures} failed pulls` }, 'pulling from the consumer again');
        failures = 0;
        this.healthy = true;
      } catch (err) {
        if (this.stopping) break;
        failures++;
        this.healthy = false;
        // The first failure and then every tenth: a NATS outage should not flood the logs.
        if (failures === 1 || failures % 10 === 0) {
          this.log.warn({ failures, error: err }, 'pull from the consumer failed; retrying');
        }
        await this.sleep(Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeSleep = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
