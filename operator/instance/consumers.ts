// The instances' durable JetStream consumers, created and updated exactly as api/jetstream.ts defines them.
// A consumer already made as specified is not asked for again until a recheck is due or NATS reconnected, so
// reconciles driven by stats cost NATS nothing.

import {
  deleteInstanceConsumer,
  ensureInstanceConsumer,
  type InstanceConsumerSpec,
  type InstanceRef,
  type Topology,
} from '../../api/jetstream.js';
import { hashOf } from '../hashing.js';
import type { NatsLink } from '../nats-link.js';

export interface ConsumerKeeperOptions {
  nats: NatsLink;
  topology: Topology;
  /** A consumer is checked against NATS again after this long (ms), in case someone deleted it. */
  recheckMs?: number;
  now?: () => number;
}

const refKey = (ref: InstanceRef) => `${ref.namespace}/${ref.name}`;

export class ConsumerKeeper {
  private readonly ensured = new Map<string, { hash: string; at: number }>();
  private readonly now: () => number;

  constructor(private readonly options: ConsumerKeeperOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Creates or updates the consumer; throws NatsUnavailableError or NATS's error (retried with backoff). */
  async ensure(spec: InstanceConsumerSpec): Promise<void> {
    const key = refKey(spec);
    const hash = hashOf(spec);
    const last = this.ensured.get(key);
    if (last?.hash === hash && this.now() - last.at < (this.options.recheckMs ?? 5 * 60_000)) return;
    this.ensured.delete(key);
    await ensureInstanceConsumer(this.options.nats.jsm(), this.options.topology, spec);
    this.ensured.set(key, { hash, at: this.now() });
  }

  async delete(ref: InstanceRef): Promise<void> {
    this.ensured.delete(refKey(ref));
    await deleteInstanceConsumer(this.options.nats.jsm(), this.options.topology, ref);
  }

  /** NATS (re)connected: it may have lost consumers (a memory store), so ask again. */
  reset(): void {
    this.ensured.clear();
  }
}
