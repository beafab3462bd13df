// Groups events for onBatch: a batch is flushed when it reaches maxSize or maxWait after its first event.
// Mixed event types share one batch, as in Segment; the caller decides what a flushed batch becomes.

export class Batcher<T> {
  private items: T[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxSize: number,
    private readonly maxWaitMs: number,
    private readonly onFlush: (items: T[]) => void,
  ) {}

  /** Events waiting in the current batch. */
  get size(): number {
    return this.items.length;
  }

  add(item: T): void {
    this.items.push(item);
    if (this.items.length >= this.maxSize) {
      this.flush();
    } else if (this.items.length === 1) {
      // The wait counts from the batch's first event, so no event waits longer than maxWait.
      this.timer = setTimeout(() => this.flush(), this.maxWaitMs);
    }
  }

  /** Hands the current batch over now (size reached, wait elapsed, or shutdown). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.items.length === 0) return;
    const batch = this.items;
    this.items = [];
    this.onFlush(batch);
  }
}
