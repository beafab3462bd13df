// The events a replica holds between receiving and settling them: the bound on concurrency, and what
// shutdown waits for or hands back. A held event is settled exactly once (ack, nak, term or release).

import type { JsMsg } from 'nats';
import type { SegmentEvent } from '../api/events.js';
import { type DeliveryHistory, deliveryCountOf, deliveryHistory, type Topology } from '../api/jetstream.js';

export interface HeldEvent {
  readonly msg: JsMsg;
  /** The event as the function sees it (after data control). */
  readonly event: SegmentEvent;
  /** The JSON text `event` was parsed from, when data control left it as it came: it crosses as that. */
  readonly text: string | undefined;
  /** Its attempt (from the copy's header) and crash count (header + this copy's redeliveries). */
  readonly history: DeliveryHistory;
  readonly receivedAt: number;
  /** Last time NATS heard about this message from us (receipt or working()), for the lease keeper. */
  leaseAt: number;
  /** An outcome is being carried out (a copy or dead letter being published): nothing else may answer it. */
  answering: boolean;
  settled: boolean;
}

export class InFlight {
  private readonly held = new Set<HeldEvent>();
  private roomWaiters: Array<{ need: number; resolve: () => void }> = [];
  private emptyWaiters: Array<() => void> = [];

  constructor(
    readonly capacity: number,
    private readonly topology: Topology,
  ) {}

  get size(): number {
    return this.held.size;
  }

  get free(): number {
    return Math.max(0, this.capacity - this.held.size);
  }

  add(msg: JsMsg, event: SegmentEvent, text?: string): HeldEvent {
    const now = Date.now();
    const held: HeldEvent = {
      msg,
      event,
      text,
      history: deliveryHistory(this.topology, msg.subject, () => msg.headers, deliveryCountOf(msg)),
      receivedAt: now,
      leaseAt: now,
      answering: false,
      settled: false,
    };
    this.held.add(held);
    return held;
  }

  /** Marks an event settled; false when it already was (a late outcome after shutdown released it). */
  settle(held: HeldEvent): boolean {
    if (held.settled) return false;
    held.settled = true;
    this.held.delete(held);
    if (this.roomWaiters.length) {
      const free = this.free;
      const ready = this.roomWaiters.filter((w) => w.need <= free);
      if (ready.length) {
        this.roomWaiters = this.roomWaiters.filter((w) => w.need > free);
        for (const w of ready) w.resolve();
      }
    }
    if (this.held.size === 0 && this.emptyWaiters.length) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const resolve of waiters) resolve();
    }
    return true;
  }

  /** Resolves once at least `need` slots are free (or `wake()` is called). */
  waitForRoom(need: number): Promise<void> {
    if (this.free >= need) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push({ need, resolve }));
  }

  /** Resolves once nothing is held. */
  waitForEmpty(): Promise<void> {
    if (this.held.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  /** Releases every room waiter (shutdown: the consumer loop must notice it should stop). */
  wake(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) w.resolve();
  }

  [Symbol.iterator](): IterableIterator<HeldEvent> {
    return this.held.values();
  }
}
