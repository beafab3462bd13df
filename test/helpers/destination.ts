// A destination API stand-in: a real HTTP server on 127.0.0.1 that records requests and fails on command.

import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  json(): any;
}

type Answer = { status: number; body?: unknown; headers?: Record<string, string> } | undefined;
/** An answer now, or later (a promise: the request is held open until it settles, as a slow API would). */
export type Responder = (req: RecordedRequest) => Answer | Promise<Answer>;

export class Destination {
  readonly requests: RecordedRequest[] = [];
  /** Decides the answer to each request; undefined means 200 with `{ok: true}`. */
  respond: Responder = () => undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<Destination> {
    let dest!: Destination;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const recorded: RecordedRequest = {
          method: req.method ?? 'GET',
          url: req.url ?? '/',
          headers: req.headers,
          body,
          json: () => JSON.parse(body),
        };
        dest.requests.push(recorded);
        const answer = (await dest.respond(recorded)) ?? { status: 200, body: { ok: true } };
        if (res.destroyed) return;
        const payload = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? {});
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
        res.end(payload);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    dest = new Destination(server, (server.address() as { port: number }).port);
    return dest;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
