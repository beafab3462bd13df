// Copies of an event for a later delivery: a message schedule for the next attempt of a retry, or a copy due at
// once after a crash or a shutdown hand-back. Each carries the event's history in its headers and is published
// (PubAck awaited) before the original is acked, so nothing is lost if the runner dies in between.

import type { JetStreamClient, JsMsg } from 'nats';
import {
  type DeliveryHistory,
  historyHeaders,
  type InstanceRef,
  retryScheduleSubject,
  retrySubject,
  type Topology,
} from '../api/jetstream.js';

const PUBLISH_TIMEOUT_MS = 5000;

export class Requeuer {
  private readonly target: string;

  constructor(
    private readonly js: JetStreamClient,
    private readonly topology: Topology,
    private readonly instance: InstanceRef,
  ) {
    this.target = retrySubject(topology, instance);
  }

  /**
   * One id per copy it follows: a copy published by a runner that died before acking the original is not
   * published again when the original is redelivered, whichever kind of copy the second one would have been.
   */
  private msgID(msg: JsMsg): string {
    return `copy-${this.instance.namespace}-${this.instance.name}-${msg.seq}`;
  }

  /** The next attempt, due at `at`: a message schedule in the retry stream, holding no consumer slot. */
  async schedule(msg: JsMsg, history: DeliveryHistory, at: Date): Promise<void> {
    const h = historyHeaders(history);
    h.set('Nats-Schedule', `@at ${at.toISOString()}`);
    h.set('Nats-Schedule-Target', this.target);
    await this.js.publish(retryScheduleSubject(this.topology, this.instance, msg.seq), msg.data, {
      headers: h,
      msgID: this.msgID(msg),
      timeout: PUBLISH_TIMEOUT_MS,
    });
  }

  /** A copy for delivery at once (to any replica), with `history`. */
  async now(msg: JsMsg, history: DeliveryHistory): Promise<void> {
    await this.js.publish(this.target, msg.data, {
      headers: historyHeaders(history),
      msgID: this.msgID(msg),
      timeout: PUBLISH_TIMEOUT_MS,
    });
  }
}
