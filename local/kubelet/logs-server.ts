// The one part of the kubelet API this kubelet serves: /containerLogs, which the API server calls for
// `kubectl logs` (follow, tailLines, limitBytes, previous). HTTPS, callers must present a CA-signed cert.

import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from './downward.js';
import type { PodWorker } from './pod-worker.js';

export interface LogsServer {
  port: number;
  close(): Promise<void>;
}

const FOLLOW_POLL_MS = 250;

/** The last `lines` lines of `text` (a trailing newline does not count as a line). */
export function tail(text: string, lines: number): string {
  if (lines <= 0) return '';
  const parts = text.split('\n');
  const trailing = parts[parts.length - 1] === '' ? parts.pop() : undefined;
  return parts.slice(-lines).join('\n') + (trailing === '' ? '\n' : '');
}

export async function startLogsServer(
  tls: { cert: string; key: string; clientCa: string },
  find: (namespace: string, pod: string) => PodWorker | undefined,
): Promise<LogsServer> {
  const [cert, key, ca] = await Promise.all([readFile(tls.cert), readFile(tls.key), readFile(tls.clientCa)]);
  const server: Server = createServer(
    { cert, key, ca, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const url = new URL(req.url ?? '/', 'https://kubelet');
      const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
      if (req.method !== 'GET' || !m) {
        res
          .writeHead(404, { 'content-type': 'text/plain' })
          .end('the local kubelet serves only /containerLogs\n');
        return;
      }
      const [namespace, podName, containerName] = m.slice(1).map(decodeURIComponent) as [
        string,
        string,
        string,
      ];
      const run = find(namespace, podName)?.container(containerName);
      if (!run) {
        res
          .writeHead(404, { 'content-type': 'text/plain' })
          .end(`container ${containerName} of ${namespace}/${podName} is not on this node\n`);
        return;
      }
      const previous = url.searchParams.get('previous') === 'true';
      if (previous && run.restartCount === 0) {
        res
          .writeHead(400, { 'content-type': 'text/plain' })
          .end(`previous terminated container "${containerName}" not found\n`);
        return;
      }
      const file = run.logFile(previous ? run.restartCount - 1 : run.restartCount);
      const follow = url.searchParams.get('follow') === 'true' && !previous;
      const tailLines = url.searchParams.has('tailLines')
        ? Number(url.searchParams.get('tailLines'))
        : undefined;
      const limitBytes = url.searchParams.has('limitBytes')
        ? Number(url.searchParams.get('limitBytes'))
        : undefined;
      void (async () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let text = await readFile(file, 'utf8').catch(() => '');
        let offset = Buffer.byteLength(text);
        if (tailLines !== undefined) text = tail(text, tailLines);
        if (limitBytes !== undefined) text = Buffer.from(text).subarray(0, limitBytes).toString('utf8');
        res.write(text);
        if (!follow || (limitBytes !== undefined && Buffer.byteLength(text) >= limitBytes)) return res.end();
        // Follow this run's file until the run ends or the client goes.
        const thisRun = run.restartCount;
        let closed = false;
        req.on('close', () => (closed = true));
        while (!closed) {
          const size = (await stat(file).catch(() => undefined))?.size ?? offset;
          if (size > offset) {
            await new Promise<void>((resolve) => {
              createReadStream(file, { start: offset, end: size - 1 })
                .on('data', (chunk) => res.write(chunk))
                .on('end', resolve)
                .on('error', () => resolve());
            });
            offset = size;
          } else if (
            run.restartCount !== thisRun ||
            (!run.running && run.state && 'terminated' in run.state)
          ) {
            break;
          }
          await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
        }
        res.end();
      })().catch(() => res.destroy());
    },
  );
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
