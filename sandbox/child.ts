// The sandbox process: hosts one function's in-process sandbox (sandbox.ts) for its supervisor
// (supervisor.ts), so that whatever user code does to this process, the runner that forked it stays up.

import { encodeReports, type FromChild, type ToChild } from './child-wire.js';
import { type EncodedFunctionSandbox, loadEncodedFunction } from './sandbox.js';
import { FunctionLoadError } from './types.js';

let sandbox: EncodedFunctionSandbox | undefined;

function send(message: FromChild): void {
  process.send?.(message);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function handle(m: ToChild): Promise<void> {
  if (m.t === 'load') {
    try {
      sandbox = await loadEncodedFunction(m.source, m.options);
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
    const reports =
      m.t === 'invoke'
        ? encodeReports(await loaded.invokeEncoded(m.events))
        : JSON.stringify(await loaded.invokeBatchEncoded(m.events));
    send({ t: m.t === 'invoke' ? 'reports' : 'batch-report', id: m.id, reports, rebuilds: loaded.rebuilds });
  } catch (err) {
    send({ t: 'call-failed', id: m.id, message: messageOf(err), rebuilds: loaded?.rebuilds ?? 0 });
  }
}

process.on('message', (m: ToChild) => void handle(m));
// The supervisor is gone (it exited or closed the channel): nothing is left to serve.
process.on('disconnect', () => process.exit(0));
