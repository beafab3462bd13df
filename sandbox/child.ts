// The sandbox process: hosts one function's in-process sandbox (sandbox.ts) for its supervisor
// (supervisor.ts), so that whatever user code does to this process, the runner that forked it stays up.

import { Socket } from 'node:net';
import { encodeReports, type FromChild, MAX_FRAME_BYTES, type ToChild, WIRE_FD } from './child-wire.js';
import { FrameChannel } from './frames.js';
import { type EncodedFunctionSandbox, loadEncodedFunction } from './sandbox.js';
import { FunctionLoadError } from './types.js';

let sandbox: EncodedFunctionSandbox | undefined;

const pipe = new Socket({ fd: WIRE_FD, readable: true, writable: true });
const wire = new FrameChannel<ToChild, FromChild>(
  pipe,
  MAX_FRAME_BYTES,
  (m, payload) => void handle(m, payload),
  () => process.exit(1),
);
// The supervisor is gone (it exited or closed the pipe): nothing is left to serve.
pipe.on('close', () => process.exit(0));

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function handle(m: ToChild, payload: string): Promise<void> {
  if (m.t === 'load') {
    try {
      sandbox = await loadEncodedFunction(m.source, m.options);
      wire.send({ t: 'loaded', handlers: [...sandbox.handlers], loadLogs: [...sandbox.loadLogs] });
    } catch (err) {
      if (err instanceof FunctionLoadError) {
        wire.send({
          t: 'load-failed',
          reason: err.reason,
          ...(err.line !== undefined ? { line: err.line } : {}),
          ...(err.column !== undefined ? { column: err.column } : {}),
        });
      } else {
        wire.send({ t: 'failed', message: messageOf(err) });
      }
    }
    return;
  }
  const loaded = sandbox;
  try {
    if (!loaded) throw new Error('no function is loaded in this sandbox process');
    const events = { json: payload, count: m.count };
    const reports =
      m.t === 'invoke'
        ? encodeReports(await loaded.invokeEncoded(events))
        : JSON.stringify(await loaded.invokeBatchEncoded(events));
    wire.send(
      { t: m.t === 'invoke' ? 'reports' : 'batch-report', id: m.id, rebuilds: loaded.rebuilds },
      reports,
    );
  } catch (err) {
    wire.send({ t: 'call-failed', id: m.id, message: messageOf(err), rebuilds: loaded?.rebuilds ?? 0 });
  }
}
