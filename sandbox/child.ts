// The sandbox process: hosts one function's in-process sandbox (sandbox.ts) for its supervisor
// (supervisor.ts), so that whatever user code does to this process, the runner that forked it stays up.

import type { FromChild, ToChild } from './child-wire.js';
import { loadFunction } from './sandbox.js';
import { FunctionLoadError, type FunctionSandbox } from './types.js';

let sandbox: FunctionSandbox | undefined;

function send(message: FromChild): void {
  process.send?.(message);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function handle(m: ToChild): Promise<void> {
  if (m.t === 'load') {
    try {
      sandbox = await loadFunction(m.source, m.options);
      send({ t: 'loaded', handlers: [...sandbox.handlers], loadLogs: [...sandbox.loadLogs] });
    } catch (err) {
      if (err instanceof FunctionLoadError) {
        send({
          t: 'load-failed',
          reason: err.reason,
          ...(err.line !== undefined ? { line: err.line } : {}),
          ...(err.column !== undefined ? { column: err.column } : {}),
        });
      } else {
        send({ t: 'failed', message: messageOf(err) });
      }
    }
    return;
  }
  const loaded = sandbox;
  try {
    if (!loaded) throw new Error('no function is loaded in this sandbox process');
    if (m.t === 'invoke') {
      const reports = await loaded.invoke(m.events);
      send({ t: 'reports', id: m.id, reports, rebuilds: loaded.rebuilds });
    } else {
      const report = await loaded.invokeBatch(m.events);
      send({ t: 'batch-report', id: m.id, report, rebuilds: loaded.rebuilds });
    }
  } catch (err) {
    send({ t: 'call-failed', id: m.id, message: messageOf(err), rebuilds: loaded?.rebuilds ?? 0 });
  }
}

process.on('message', (m: ToChild) => void handle(m));
// The supervisor is gone (it exited or closed the channel): nothing is left to serve.
process.on('disconnect', () => process.exit(0));
