// The frames between the supervisor and its sandbox process: whatever way the stream cuts them, each
// arrives whole and exact, and a frame that claims too much breaks the stream instead of filling memory.

import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameReader } from '../../sandbox/frames.js';

interface Read {
  frames: [string, string][];
  broken: string[];
  reader: FrameReader;
}

function reader(maxBytes = 1 << 20): Read {
  const out: Read = { frames: [], broken: [], reader: undefined as unknown as FrameReader };
  out.reader = new FrameReader(
    maxBytes,
    (header, payload) => out.frames.push([header, payload]),
    (why) => out.broken.push(why),
  );
  return out;
}

// Multi-byte UTF-8 (2, 3 and 4 bytes) on both sides, an empty payload, a JSON payload with escapes.
const FRAMES: [string, string][] = [
  ['{"t":"invoke","id":1,"count":2}', '[{"type":"track","event":"Café ☕ 𝄞"},{"x":"\\"\\\\"}]'],
  ['{"t":"failed","message":"€"}', ''],
  ['{"t":"reports","id":1}', 'x'.repeat(70_000)],
];

describe('frames', () => {
  it('come out whole and exact, however the stream cuts them (every cut point of every frame)', () => {
    const bytes = Buffer.concat(FRAMES.map(([h, p]) => encodeFrame(h, p)));
    // One cut anywhere (including inside a prefix and inside a multi-byte character), then byte by byte.
    for (let cut = 0; cut <= bytes.length; cut += cut < 200 ? 1 : 997) {
      const r = reader();
      r.reader.push(bytes.subarray(0, cut));
      r.reader.push(bytes.subarray(cut));
      expect(r.frames).toEqual(FRAMES);
      expect(r.broken).toEqual([]);
    }
    const r = reader();
    for (let i = 0; i < bytes.length; i++) r.reader.push(bytes.subarray(i, i + 1));
    expect(r.frames).toEqual(FRAMES);
  });

  it('several in one chunk each arrive, in order; a partial one waits for the rest', () => {
    const r = reader();
    const [a, b, c] = FRAMES.map(([h, p]) => encodeFrame(h, p)) as [Buffer, Buffer, Buffer];
    r.reader.push(Buffer.concat([a, b, c.subarray(0, 9)]));
    expect(r.frames).toEqual(FRAMES.slice(0, 2));
    r.reader.push(c.subarray(9));
    expect(r.frames).toEqual(FRAMES);
  });

  it('a frame claiming more than the bound breaks the stream at its prefix, before anything is held', () => {
    const r = reader(1024);
    const forged = Buffer.alloc(8);
    forged.writeUInt32LE(10, 0);
    forged.writeUInt32LE(0xffff_ffff, 4); // 4 GiB of payload announced
    r.reader.push(Buffer.concat([encodeFrame('{"ok":1}', 'fine'), forged]));
    expect(r.frames).toEqual([['{"ok":1}', 'fine']]);
    expect(r.broken).toEqual([expect.stringContaining('at most 1024')]);
    // Nothing more is read from a broken stream.
    r.reader.push(encodeFrame('{"late":1}', ''));
    expect(r.frames).toHaveLength(1);
  });
});
