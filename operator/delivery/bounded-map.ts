// A Map that keeps at most `max` entries, dropping the least recently used: what bounds the tracker's memory
// whatever arrives on the stats subjects. A Map iterates in insertion order, so re-inserting on use is LRU.

export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();

  /** `onEvict` receives each entry dropped to make room (not those deleted or taken). */
  constructor(
    readonly max: number,
    private readonly onEvict: (key: K, value: V) => void = () => {},
  ) {}

  get size(): number {
    return this.map.size;
  }

  /** The value, now the most recently used. */
  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) {
      const [oldest, old] = this.map.entries().next().value as [K, V];
      this.map.delete(oldest);
      this.onEvict(oldest, old);
    }
  }

  /** Removes and returns the value. */
  take(key: K): V | undefined {
    const value = this.map.get(key);
    this.map.delete(key);
    return value;
  }

  values(): IterableIterator<V> {
    return this.map.values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.map.entries();
  }
}
