// The domain-free machinery, alone: the work queue's de-duplication, one-worker-per-key and backoff, and the
// condition set's derived Ready and stable transition times.

import { describe, expect, it } from 'vitest';
import { ConditionSet } from '../../operator/conditions.js';
import { WorkQueue } from '../../operator/machinery/work-queue.js';

describe('WorkQueue', () => {
  it('holds a key once however often it is added', async () => {
    const q = new WorkQueue();
    for (let i = 0; i < 100; i++) q.add('ns/a');
    q.add('ns/b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
  });

  it('never hands out a key being handled: added meanwhile, it comes back after done()', async () => {
    const q = new WorkQueue();
    q.add('ns/a');
    const key = (await q.get())!;
    q.add('ns/a');
    expect(q.length).toBe(0);
    const next = q.get();
    let handedOut = false;
    void next.then(() => (handedOut = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(handedOut).toBe(false);
    q.done(key);
    expect(await next).toBe('ns/a');
  });

  it('backs off exponentially per key, capped, and forget() starts again from the base', () => {
    const q = new WorkQueue({ baseBackoffMs: 100, maxBackoffMs: 1000 });
    const delays = Array.from({ length: 6 }, () => q.addRateLimited('ns/a'));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(q.addRateLimited('ns/b')).toBe(100);
    q.forget('ns/a');
    expect(q.addRateLimited('ns/a')).toBe(100);
    q.shutDown();
  });

  it('a delayed add arrives after its delay; the earlier of two delayed adds wins', async () => {
    const q = new WorkQueue();
    q.addAfter('ns/a', 5000);
    q.addAfter('ns/a', 30);
    const started = Date.now();
    expect(await q.get()).toBe('ns/a');
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    q.shutDown();
  });

  it('shutDown wakes every waiting worker with undefined', async () => {
    const q = new WorkQueue();
    const waiting = [q.get(), q.get()];
    q.shutDown();
    expect(await Promise.all(waiting)).toEqual([undefined, undefined]);
  });
});

describe('ConditionSet', () => {
  const set = new ConditionSet('Ready', ['A', 'B'] as const);
  const at = new Date('2026-01-01T00:00:00Z');

  it('Ready is True only when every dependent is, with the reason given for it', () => {
    const c = set.manage([], 3).markTrue('A', 'Fine').markTrue('B', 'Fine').whenReady('AllGood', 'all good');
    expect(c.list(at)[0]).toEqual({
      type: 'Ready',
      status: 'True',
      observedGeneration: 3,
      lastTransitionTime: at.toISOString(),
      reason: 'AllGood',
      message: 'all good',
    });
  });

  it('a False dependent makes Ready False with its reason and message; else the first not True', () => {
    const c = set.manage([], 1).markUnknown('A', 'Waiting', 'a waits').markFalse('B', 'Broken', 'b broke');
    expect(c.get('Ready')).toEqual({ status: 'False', reason: 'Broken', message: 'b broke' });
    const d = set.manage([], 1).markTrue('A', 'Fine');
    expect(d.get('Ready')).toMatchObject({ status: 'Unknown', reason: 'NotChecked' });
  });

  it('Ready marked directly wins over the dependents', () => {
    const c = set
      .manage([], 1)
      .markTrue('A', 'Fine')
      .markTrue('B', 'Fine')
      .markNotReady('InvalidSpec', 'spec.x: bad');
    expect(c.get('Ready')).toEqual({ status: 'False', reason: 'InvalidSpec', message: 'spec.x: bad' });
  });

  it('keeps lastTransitionTime while the status stays, even when reason and message change', () => {
    const first = set.manage([], 1).markFalse('A', 'One', 'first').list(at);
    const later = new Date('2026-01-02T00:00:00Z');
    const second = set.manage(first, 2).markFalse('A', 'Two', 'second').list(later);
    expect(second.find((x) => x.type === 'A')).toMatchObject({
      reason: 'Two',
      lastTransitionTime: at.toISOString(),
    });
    const third = set.manage(second, 2).markTrue('A', 'Fine').list(later);
    expect(third.find((x) => x.type === 'A')!.lastTransitionTime).toBe(later.toISOString());
  });

  it('lists Ready first, then the dependents marked, then other types; unmarked ones are dropped', () => {
    const c = set.manage([], 1).markTrue('Healthy', 'Ok').markTrue('B', 'Fine');
    expect(c.list(at).map((x) => x.type)).toEqual(['Ready', 'B', 'Healthy']);
  });
});
