// A gateway under test: real nats-server, its own JetStream prefix (so tests never see each other's
// events), a write-keys file in a temp dir, and real HTTP on 127.0.0.1 with helpers to read the stream.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { SegmentEvent } from '../../api/events.js';
import { ensureStreams, type StreamLimits, topology } from '../../api/jetstream.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../gateway/server.js';
import { NatsServer } from '../helpers/nats-server.js';

export const WRITE_KEY = 'wk_web_1234';
export const OTHER_KEY = 'wk_backend_5678';
export const DEFAULT_KEYS: Record<string, string> = { [WRITE_KEY]: 'web', [OTHER_KEY]: 'backend' };

export function basic(writeKey: string, password = ''): string {
  return `Basic ${Buffer.from(`${writeKey}:${password}`).toString('base64')}`;
}

export interface StoredEvent {
  subject: string;
  msgId: string | undefined;
  event: SegmentEvent;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

let nextPrefix = 0;

export interface HarnessOptions {
  keys?: Record<string, string>;
  /** Stream limits; `false` creates no streams. Memory storage unless said otherwise. */
  streams?: Partial<StreamLimits> | false;
  gateway?: Partial<GatewayOptions>;
}

export class GatewayHarness {
  private constructor(
    readonly nats: NatsServer,
    readonly nc: NatsConnection,
    readonly gateway: Gateway,
    readonly url: string,
    readonly dir: string,
  ) {}

  static async start(nats: NatsServer, options: HarnessOptions = {}): Promise<GatewayHarness> {
    const prefix = `gw${process.pid}_${nextPrefix++}`;
    const dir = mkdtempSync(join(tmpdir(), 'dfn-gateway-'));
    const writeKeysFile = join(dir, 'write-keys.yaml');
    writeFileSync(writeKeysFile, writeKeysYaml(options.keys ?? DEFAULT_KEYS));
    // Reconnects as eagerly as the gateway does, so reads right after a server restart work.
    const nc = await connect({ servers: nats.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    if (options.streams !== false) {
      await ensureStreams(await nc.jetstreamManager(), topology(prefix), {
        storage: 'memory',
        ...options.streams,
      });
    }
    const gateway = await createGateway({
      writeKeysFile,
      natsUrl: nats.url,
      prefix,
      natsReconnectWaitMs: 100,
      writeKeysPollMs: 100,
      ...options.gateway,
    });
    const url = await gateway.listen(0, '127.0.0.1');
    await gateway.link.connected();
    return new GatewayHarness(nats, nc, gateway, url, dir);
  }

  get writeKeysFile(): string {
    return join(this.dir, 'write-keys.yaml');
  }

  get stream(): string {
    return this.gateway.topology.eventsStream;
  }

  get prefix(): string {
    return this.gateway.topology.prefix;
  }

  /** POSTs JSON (or a raw body) to the gateway; `writeKey` goes into the Basic-auth header. */
  async post(
    path: string,
    body: unknown,
    options: { writeKey?: string; headers?: Record<string, string>; raw?: boolean } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
    if (options.writeKey !== undefined) headers.authorization = basic(options.writeKey);
    const res = await fetch(this.url + path, {
      method: 'POST',
      headers,
      body: options.raw ? (body as string | Uint8Array) : JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: await readBody(res) };
  }

  async get(path: string): Promise<Reply> {
    const res = await fetch(this.url + path);
    return { status: res.status, headers: res.headers, body: await readBody(res) };
  }

  /** Number of messages in this gateway's events stream. */
  async count(): Promise<number> {
    const jsm = await this.nc.jetstreamManager();
    return (await jsm.streams.info(this.stream)).state.messages;
  }

  /** Every message in this gateway's events stream, in order. */
  async stored(): Promise<StoredEvent[]> {
    const jsm = await this.nc.jetstreamManager();
    const { state } = await jsm.streams.info(this.stream);
    const out: StoredEvent[] = [];
    if (state.messages === 0) return out;
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(this.stream, { seq });
      out.push({ subject: m.subject, msgId: m.header?.get('Nats-Msg-Id') || undefined, event: m.json() });
    }
    return out;
  }

  /** A metric's sample value from /metrics, e.g. metric('dfn_gateway_rejects_total', {reason: 'X'}). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text: string = (await this.get('/metrics')).body;
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-z_:]+)(?:\{(.*)\})? (.+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const have = m[2] ? m[2].split(',') : [];
      if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
    }
    return 0;
  }

  writeKeys(keys: Record<string, string>): void {
    writeFileSync(this.writeKeysFile, writeKeysYaml(keys));
  }

  async close(): Promise<void> {
    await this.gateway.close();
    await this.nc.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function writeKeysYaml(keys: Record<string, string>): string {
  return Object.entries(keys)
    .map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}\n`)
    .join('');
}

/**
 * The hooks a gateway test file needs: one nats-server for the file, and every gateway a test starts
 * closed after that test. Call at the top of a file (or describe block).
 */
export function gatewayFixture() {
  let nats: NatsServer | undefined;
  const open: GatewayHarness[] = [];
  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterEach(async () => {
    for (const g of open.splice(0)) await g.close();
  });
  afterAll(async () => {
    await nats?.dispose();
  });
  return {
    get nats(): NatsServer {
      if (!nats)
        throw new Error('gatewayFixture: nats-server not started yet (use it inside tests or hooks)');
      return nats;
    },
    async start(options?: HarnessOptions): Promise<GatewayHarness> {
      const g = await GatewayHarness.start(this.nats, options);
      open.push(g);
      return g;
    },
  };
}

/**
 * One nats-server and one gateway shared by every test of a file (or describe block), for tests that
 * each leave the stream as they found it.
 */
export function sharedGateway(options?: HarnessOptions) {
  let nats: NatsServer | undefined;
  let gateway: GatewayHarness | undefined;
  beforeAll(async () => {
    nats = await NatsServer.start();
    gateway = await GatewayHarness.start(nats, options);
  });
  afterAll(async () => {
    await gateway?.close();
    await nats?.dispose();
  });
  const started = <T>(value: T | undefined): T => {
    if (!value) throw new Error('sharedGateway: not started yet (use it inside tests or hooks)');
    return value;
  };
  return {
    get nats(): NatsServer {
      return started(nats);
    },
    get h(): GatewayHarness {
      return started(gateway);
    },
  };
}
