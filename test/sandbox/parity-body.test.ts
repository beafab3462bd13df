// Response bodies read as text in the sandbox against node-fetch 2 (what Segment's runtime uses), which
// reads them as Node's `buffer.toString()`: truncated and invalid UTF-8 included, random bytes too.

import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, seeded } from '../helpers/parity.js';
import { sandboxes } from '../helpers/sandbox.js';

const { load } = sandboxes();

const random = seeded(8);
const BODIES = [
  [0x68, 0xc3, 0xa9],
  [0x68, 0xe2, 0x82],
  [0xe2, 0x82, 0x41, 0xf0, 0x9f, 0x98],
  [0xef, 0xbb, 0xbf, 0x7b, 0x7d],
  [0xed, 0xa0, 0x80, 0xc0, 0x80, 0xff],
  ...Array.from({ length: 8 }, (_, i) => randomBytes(random, 16 + i * 40)),
  // A long body (each log part is cut at 64 Ki characters, so 30,000 of them) ending mid-character.
  [...Array.from({ length: 30_000 }, () => [0xc3, 0xa9]).flat(), 0xc3],
];

let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const body = BODIES[Number(req.url?.slice(1))];
    res.writeHead(body ? 200 : 404, { 'content-type': 'text/plain' });
    res.end(Buffer.from(body ?? []));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('response bodies as text', () => {
  it('res.text() decodes every body as Buffer#toString does in Node', async () => {
    const sb = await load(
      `async function onTrack(event) {
        for (let i = 0; i < ${BODIES.length}; i++) {
          const text = await (await fetch('${base}/' + i)).text();
          const bytes = await (await fetch('${base}/' + i)).buffer();
          console.log(JSON.stringify(text));
          console.log(JSON.stringify(bytes.toString()), bytes.length);
        }
      }`,
      { allowPrivateNetwork: true, limits: { timeoutMs: 30_000, logBytes: 4 * 1024 * 1024 } },
    );
    const [report] = await sb.invoke([{ type: 'track', event: 'Bodies' }]);
    expect(report!.outcome).toEqual({ outcome: 'success' });
    const expected = BODIES.flatMap((b) => {
      const text = JSON.stringify(Buffer.from(b).toString());
      return [text, `${text} ${b.length}`];
    });
    expect(report!.logs).toEqual(expected);
  });
});
