// `dfn gateway` as a child process for end-to-end tests: its own write-keys file, a free loopback port, ready
// once /readyz answers 200, stopped with SIGTERM.

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DfnOptions, spawnDfn } from './dfn.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export class GatewayProcess {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly url: string,
  ) {}

  /** A gateway for NATS at `natsUrl`, each write key mapped to its source; creates the streams. */
  static async start(
    natsUrl: string,
    keys: Record<string, string>,
    options: Pick<DfnOptions, 'nodeArgs' | 'built'> = {},
  ): Promise<GatewayProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'dfn-gateway-'));
    const keysFile = join(dir, 'write-keys.yaml');
    writeFileSync(
      keysFile,
      Object.entries(keys)
        .map(([k, source]) => `${k}: ${source}\n`)
        .join(''),
    );
    const port = await freePort();
    const child = spawnDfn(
      [
        'gateway',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--write-keys',
        keysFile,
        '--nats-url',
        natsUrl,
        '--create-streams',
      ],
      options,
    );
    const gateway = new GatewayProcess(child, dir, `http://127.0.0.1:${port}`);
    await waitFor(
      'the gateway to be ready',
      async () => (await fetch(`${gateway.url}/readyz`)).ok,
      60_000,
      100,
    );
    return gateway;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
