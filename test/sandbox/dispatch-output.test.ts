// The host's check of what the dispatcher sends back: user code shares the isolate with the dispatcher, so
// whatever reaches acceptDelivery may be forged. Both entry forms are taken exactly, and anything else ends
// the invocations still open as malformed instead of being believed.

import { describe, expect, it } from 'vitest';
import { acceptDelivery, type RawInvocation } from '../../sandbox/dispatch-output.js';
import { Redactor } from '../../sandbox/redact.js';

const redactor = new Redactor(['s3cret']);

function accept(out: unknown, count = 2, statuses = 0) {
  const outputs: (RawInvocation | undefined)[] = Array.from({ length: count }, () => undefined);
  const filled = acceptDelivery(out, outputs, statuses, 4096, redactor);
  return { filled, outputs };
}

describe('acceptDelivery', () => {
  it('takes a plain success as [index, durationMs] and a full entry as [index, result, logs]', () => {
    const { filled, outputs } = accept(
      '[[1,2.5],[0,{"ok":false,"errorClass":"RetryError","message":"down s3cret","durationMs":3},{"lines":["key s3cret"],"cut":false}]]',
    );
    expect(filled).toEqual([1, 0]);
    expect(outputs[1]).toEqual({ result: { ok: true, durationMs: 2.5 }, logs: [] });
    expect(outputs[0]!.result).toMatchObject({ ok: false, errorClass: 'RetryError', durationMs: 3 });
    expect(outputs[0]!.logs).toEqual(['key [redacted]']);
  });

  it('the first result for an index wins, and an index past the call is ignored', () => {
    const { filled, outputs } = accept('[[0,1],[0,{"ok":false},{"lines":[]}],[7,1]]', 3);
    expect(filled).toEqual([0]);
    expect(outputs[0]).toEqual({ result: { ok: true, durationMs: 1 }, logs: [] });
    expect(outputs.slice(1)).toEqual([undefined, undefined]);
  });

  it.each([
    ['a negative duration', '[[0,-1]]'],
    ['a duration that is not a number', '[[0,"5"]]'],
    ['a duration of null', '[[0,null]]'],
    ['an index that is not an integer', '[[0.5,1]]'],
    ['a negative index', '[[-1,1]]'],
    ['an entry of four', '[[0,{"ok":true},{"lines":[]},1]]'],
    ['an entry of one', '[[0]]'],
    ['more entries than invocations', '[[0,1],[1,1],[1,1]]'],
    ['not an array', '{"0":[0,1]}'],
  ])('%s ends the open invocations as malformed', (_, out) => {
    const { filled, outputs } = accept(out);
    expect(filled).toEqual([0, 1]);
    for (const o of outputs) {
      expect(o!.result).toMatchObject({ ok: false, message: expect.stringContaining('malformed result') });
    }
  });

  it('invalid JSON, a non-string and an oversized delivery are malformed too', () => {
    expect(accept('[[0,1]').outputs[0]!.result.message).toContain('invalid JSON');
    expect(accept(42).outputs[0]!.result.message).toContain('not a string');
    expect(accept(`[[0,1${' '.repeat(10_000_000)}]]`).outputs[0]!.result.message).toContain('too large');
  });
});
