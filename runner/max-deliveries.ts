// The max_deliver backstop: JetStream's advisory that an event reached the instance consumer's max_deliver
// (kept in the advisory stream until a runner takes it) becomes a `Crashed` dead letter, so nothing stays silently.

import type { Consumer, JetStreamClient, JetStreamManager, JsMsg } from 'nats';
import { NatsError } from 'nats';
import { deliveryHistory, type MaxDeliveriesAdvisory, type Topology } from '../api/jetstream.js';
import type { Logger } from '../lib/telemetry.js';
import { buildDeadLetter, publishDeadLetter } from './dead-letters.js';
import type { RecordIdentity } from './delivery-records.js';
import type { Stats } from './stats.js';

const NO_MESSAGE_FOUND = 10037;
/** An advisory whose dead letter could not be written comes back this soon. */
const RETRY_DELAY_MS = 10_000;

export interface MaxDeliveriesDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
  identity: RecordIdentity;
  stats: Stats;
  log: Logger;
}

export class MaxDeliveriesBackstop {
  private stopping = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly consumer: Consumer,
    private readonly deps: MaxDeliveriesDeps,
    private readonly expiresMs: number,
  ) {}

  start(): void {
    this.running ??= this.run();
  }

  /** Stops after the pull under way (at most expiresMs), for the same reason as the consumer loop. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        const messages = await this.consumer.fetch({ max_messages: 16, expires: this.expiresMs });
        for await (const m of messages) await this.handle(m);
      } catch (err) {
        if (this.stopping) break;
        this.deps.log.warn({ error: err }, 'pull from the max-deliveries advisories failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** One advisory: the event it names, read from its stream, dead-lettered; then the advisory is acked. */
  async handle(m: JsMsg): Promise<void> {
    const { js, jsm, topology, identity, stats, log } = this.deps;
    let advisory: MaxDeliveriesAdvisory;
    try {
      advisory = JSON.parse(new TextDecoder().decode(m.data)) as MaxDeliveriesAdvisory;
      if (typeof advisory.stream_seq !== 'number' || typeof advisory.stream !== 'string') throw new Error();
    } catch {
      m.term('not a max-deliveries advisory');
      return;
    }
    let stored: Awaited<ReturnType<JetStreamManager['streams']['getMessage']>>;
    try {
      stored = await jsm.streams.getMessage(advisory.stream, { seq: advisory.stream_seq });
    } catch (err) {
      if (err instanceof NatsError && err.api_error?.err_code === NO_MESSAGE_FOUND) {
        log.error(
          {
            stream: advisory.stream,
            seq: advisory.stream_seq,
            deliveries: advisory.deliveries,
          },
          'an event reached max_deliver but is no longer in its stream (expired or removed)',
        );
        m.ack();
        return;
      }
      m.nak(RETRY_DELAY_MS);
      return;
    }
    const history = deliveryHistory(topology, stored.subject, () => stored.header, advisory.deliveries);
    let deadLetter: ReturnType<typeof buildDeadLetter>;
    try {
      deadLetter = buildDeadLetter({
        ...identity,
        data: stored.data,
        subject: stored.subject,
        seq: stored.seq,
        publishedAt: stored.time.toISOString(),
        history,
        lastError: {
          errorType: 'Crashed',
          message: `delivered ${advisory.deliveries} times without an outcome (the consumer's max_deliver)`,
        },
      });
    } catch {
      log.error(
        {
          seq: stored.seq,
        },
        'a message that is not an event reached max_deliver; left in its stream',
      );
      m.ack();
      return;
    }
    try {
      await publishDeadLetter(js, topology, deadLetter);
    } catch (err) {
      log.error(
        {
          seq: stored.seq,
          error: err,
        },
        'could not dead-letter an event that reached max_deliver; trying again',
      );
      m.nak(RETRY_DELAY_MS);
      return;
    }
    log.warn(
      {
        seq: stored.seq,
        deliveries: advisory.deliveries,
      },
      'dead-lettered an event that reached max_deliver',
    );
    stats.counters.deadLetteredFromAdvisory++;
    stats.failedAttempt('Crashed', deadLetter.lastError.message);
    m.ack();
  }
}
