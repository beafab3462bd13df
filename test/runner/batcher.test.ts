// The Batcher flushes on size and on wait, and a flush hands over everything waiting.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { Batcher } from '../../runner/batcher.js';

describe('Batcher', () => {
  afterEach(() => vi.useRealTimers());

  it('flushes as soon as a batch reaches maxSize', () => {
    const flushed: number[][] = [];
    const batcher = new Batcher<number>(3, 10_000, (items) => flushed.push(items));
    for (let i = 1; i <= 7; i++) batcher.add(i);
    expect(flushed).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(batcher.size).toBe(1);
  });

  it('flushes a partial batch maxWait after its first event', () => {
    vi.useFakeTimers();
    const flushed: string[][] = [];
    const batcher = new Batcher<string>(20, 1000, (items) => flushed.push(items));
    batcher.add('a');
    vi.advanceTimersByTime(600);
    batcher.add('b');
    vi.advanceTimersByTime(399);
    expect(flushed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(flushed).toEqual([['a', 'b']]);
    // The next batch gets its own full wait.
    batcher.add('c');
    vi.advanceTimersByTime(999);
    expect(flushed).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(flushed).toEqual([['a', 'b'], ['c']]);
  });

  it('flush() hands over what waits and cancels the timer', () => {
    vi.useFakeTimers();
    const flushed: number[][] = [];
    const batcher = new Batcher<number>(20, 1000, (items) => flushed.push(items));
    batcher.add(1);
    batcher.flush();
    vi.advanceTimersByTime(5000);
    expect(flushed).toEqual([[1]]);
    batcher.flush();
    expect(flushed).toEqual([[1]]);
  });
});
