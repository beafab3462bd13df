// nats-server for `dfn up`: JetStream with file storage under the state directory, on loopback, tethered so
// it cannot outlive dfn. Ready once a client gets a JetStream manager (the store recovered).

import { mkdir, readFile } from 'node:fs/promises';
import { connect } from 'nats';
import { TetheredProcess } from '../process.js';
import { cachedTool } from '../tools.js';

export class NatsStartError extends Error {
  override readonly name = 'NatsStartError';
  readonly code = 'DFN_UP_NATS';
}

export interface LocalNats {
  url: string;
  process: TetheredProcess;
  logFile: string;
}

export async function startNats(options: {
  port: number;
  storeDir: string;
  logFile: string;
  timeoutMs: number;
}): Promise<LocalNats> {
  const binary = cachedTool('nats-server', 'NATS_SERVER_VERSION');
  await mkdir(options.storeDir, { recursive: true });
  const proc = new TetheredProcess(
    binary,
    ['-a', '127.0.0.1', '-p', String(options.port), '-js', '-sd', options.storeDir, '-n', 'dfn-up'],
    { logFile: options.logFile },
  );
  const url = `nats://127.0.0.1:${options.port}`;
  const deadline = Date.now() + options.timeoutMs;
  let exited = false;
  void proc.exited.then(() => (exited = true));
  for (;;) {
    if (exited || Date.now() > deadline) {
      await proc.stop(2_000);
      const tail = (await readFile(options.logFile, 'utf8').catch(() => ''))
        .split('\n')
        .slice(-10)
        .join('\n');
      throw new NatsStartError(
        `nats-server ${exited ? 'exited' : 'was not ready in time'} (log ${options.logFile}):\n${tail}`,
      );
    }
    try {
      const nc = await connect({ servers: url, reconnect: false, timeout: 1_000, name: 'dfn up' });
      try {
        await nc.jetstreamManager({ timeout: 2_000 });
        return { url, process: proc, logFile: options.logFile };
      } finally {
        await nc.close();
      }
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
