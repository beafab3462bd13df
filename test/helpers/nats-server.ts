// A real nats-server with JetStream for tests: own loopback port and store dir; stop/restart keep both.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConnectionOptions, connect, type NatsConnection } from 'nats';
import { freePort } from './ports.js';
import { natsServerPath } from './tools.js';

export class NatsServer {
  private proc: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly port: number,
    readonly storeDir: string,
    /** Extra nats-server flags (e.g. `--auth <token>`) and the client options they then require. */
    private readonly extraArgs: readonly string[] = [],
    readonly clientOptions: Partial<ConnectionOptions> = {},
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(
    extraArgs: readonly string[] = [],
    clientOptions: Partial<ConnectionOptions> = {},
  ): Promise<NatsServer> {
    const server = new NatsServer(
      await freePort(),
      mkdtempSync(join(tmpdir(), 'dfn-nats-')),
      extraArgs,
      clientOptions,
    );
    await server.restart();
    return server;
  }

  /** Starts (again) on the same port and store, so JetStream state survives like a real restart. */
  async restart(): Promise<void> {
    if (this.proc) await this.stop();
    this.output = '';
    const proc = spawn(
      natsServerPath(),
      ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir, ...this.extraArgs],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.proc = proc;
    proc.stdout!.on('data', (d) => (this.output += d));
    proc.stderr!.on('data', (d) => (this.output += d));
    await this.waitReady();
  }

  private async waitReady(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (this.proc?.exitCode !== null) throw new Error(`nats-server exited:\n${this.output}`);
      try {
        const nc = await connect({
          ...this.clientOptions,
          servers: this.url,
          reconnect: false,
          timeout: 500,
        });
        try {
          await nc.jetstreamManager({ timeout: 2000 });
          return;
        } finally {
          await nc.close();
        }
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`nats-server did not become ready:\n${this.output}`);
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }

  async connect(): Promise<NatsConnection> {
    return connect({ ...this.clientOptions, servers: this.url });
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
