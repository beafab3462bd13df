// The dead-letter stream as the runner relies on it: one event is dead-lettered once, even when its
// dead letter is published twice (a runner killed between publish and term, or an ack lost in transit).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_LETTER_DEDUPE_WINDOW_MS, type DeadLetter } from '../../api/jetstream.js';
import { publishDeadLetter, readDeadLetters } from '../../runner/dead-letters.js';
import { RunnerWorld, TEST_INSTANCE } from './harness.js';

describe('dead-letter stream', () => {
  let w: RunnerWorld;
  beforeAll(async () => {
    w = await RunnerWorld.start();
  });
  afterAll(async () => {
    await w?.dispose();
  });

  it('stores a dead letter published twice for the same event once', async () => {
    const deadLetter: DeadLetter = {
      instance: TEST_INSTANCE,
      replica: 'r1',
      revision: 'rev-1',
      event: { type: 'track', event: 'E', messageId: 'dl-1' },
      subject: 'dfn.events.web.track',
      streamSequence: 42,
      lastError: { errorType: 'Retry', message: 'destination answered 503' },
      attempts: 10,
      publishedAt: new Date().toISOString(),
      deadLetteredAt: new Date().toISOString(),
    };
    await publishDeadLetter(w.f.js, w.f.t, deadLetter);
    await publishDeadLetter(w.f.js, w.f.t, { ...deadLetter, replica: 'r2' });
    const stored = [];
    for await (const d of readDeadLetters(w.f.jsm, w.f.t, TEST_INSTANCE)) stored.push(d);
    expect(stored.map((s) => s.deadLetter.replica)).toEqual(['r1']);
    const info = await w.f.jsm.streams.info(w.f.t.deadLetterStream);
    expect(info.config.duplicate_window).toBe(DEAD_LETTER_DEDUPE_WINDOW_MS * 1e6);
  });
});
