// Length-prefixed frames over a stream, for the pipe between the supervisor and its sandbox process: a
// small JSON header and a payload string (a micro-batch's events, or its reports) written as its UTF-8
// bytes. Node's IPC channel serialises every message (V8's structured clone, or JSON that escapes a JSON
// payload once more) into buffers of its own; measured with micro-batches of 100, that cost the runner
// ~2 µs per event more than this, which writes each string once into one buffer and reads it back once.

import type { Duplex } from 'node:stream';

/** The prefix: header bytes and payload bytes, unsigned 32-bit little-endian each. */
const PREFIX_BYTES = 8;

/** One frame's bytes: its prefix, the header, the payload. */
export function encodeFrame(header: string, payload: string): Buffer {
  const headerBytes = Buffer.byteLength(header);
  const payloadBytes = Buffer.byteLength(payload);
  const frame = Buffer.allocUnsafe(PREFIX_BYTES + headerBytes + payloadBytes);
  frame.writeUInt32LE(headerBytes, 0);
  frame.writeUInt32LE(payloadBytes, 4);
  frame.write(header, PREFIX_BYTES);
  frame.write(payload, PREFIX_BYTES + headerBytes);
  return frame;
}

/** Cuts a stream of chunks into frames; a frame larger than `maxBytes` breaks the stream instead. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private broken = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onFrame: (header: string, payload: string) => void,
    private readonly onBroken: (why: string) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.broken) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= PREFIX_BYTES) {
      const head = this.chunks[0]!.length >= PREFIX_BYTES ? this.chunks[0]! : this.joined();
      const headerBytes = head.readUInt32LE(0);
      const total = PREFIX_BYTES + headerBytes + head.readUInt32LE(4);
      if (total > this.maxBytes) {
        this.broken = true;
        this.chunks = [];
        this.onBroken(`a frame of ${total} bytes (at most ${this.maxBytes})`);
        return;
      }
      if (this.buffered < total) return;
      // A frame usually arrives in one chunk; one split across chunks is joined once, when complete.
      const frame = this.chunks[0]!.length >= total ? this.chunks[0]! : this.joined();
      const header = frame.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + headerBytes);
      const payload = frame.toString('utf8', PREFIX_BYTES + headerBytes, total);
      if (frame.length === total) this.chunks.shift();
      else this.chunks[0] = frame.subarray(total);
      this.buffered -= total;
      this.onFrame(header, payload);
    }
  }

  private joined(): Buffer {
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    return all;
  }
}

/** Messages as frames over one duplex stream: a JSON header of type `In` or `Out`, and a payload. */
export class FrameChannel<In, Out> {
  private readonly reader: FrameReader;

  constructor(
    private readonly stream: Duplex,
    maxBytes: number,
    onMessage: (header: In, payload: string) => void,
    onBroken: (why: string) => void,
  ) {
    this.reader = new FrameReader(
      maxBytes,
      (header, payload) => {
        let parsed: In;
        try {
          parsed = JSON.parse(header) as In;
        } catch {
          onBroken('a frame header that is not JSON');
          return;
        }
        onMessage(parsed, payload);
      },
      onBroken,
    );
    stream.on('data', (chunk: Buffer) => this.reader.push(chunk));
    // A write to a process that is gone fails here; its exit is how the other side learns of it.
    stream.on('error', () => {});
  }

  send(header: Out, payload = ''): void {
    if (!this.stream.destroyed) this.stream.write(encodeFrame(JSON.stringify(header), payload));
  }
}
