// A destination API for the benchmarks: an HTTP server on 127.0.0.1 in a process of its own (so its work
// is not charged to the process measured), reading each request's body and answering `{"ok":true}`.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';

const SERVER = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  let bytes = 0;
  req.on('data', (c) => { bytes += c.length; });
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 });
    res.end('{"ok":true}');
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.on('disconnect', () => process.exit(0));
`;

export interface DestinationProcess {
  url: string;
  stop(): Promise<void>;
}

export async function startDestinationProcess(): Promise<DestinationProcess> {
  const child: ChildProcess = spawn(process.execPath, ['-e', SERVER], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let out = '';
  for await (const chunk of child.stdout!) {
    out += String(chunk);
    if (out.includes('\n')) break;
  }
  const port = Number(out.trim());
  if (!Number.isInteger(port) || port <= 0) throw new Error(`destination process did not start: ${out}`);
  return {
    url: `http://127.0.0.1:${port}/`,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Posts a JSON body with http.request over `agent`; resolves once the reply is read and parsed as `{"ok":true}`. */
export function postJson(agent: http.Agent, target: URL, body: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          try {
            if (JSON.parse(text).ok !== true) throw new Error(`unexpected reply ${text}`);
            resolve();
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The ceiling: a plain `http.request` loop over a keep-alive pool, `concurrency` requests at a time, each
 * reply read and parsed as JSON. Posts every body once; returns bodies per second.
 */
export async function plainHttpLoop(
  url: string,
  bodies: readonly string[],
  concurrency: number,
): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const target = new URL(url);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) await postJson(agent, target, bodies[next++]!);
    }),
  );
  const perSecond = bodies.length / ((performance.now() - started) / 1000);
  agent.destroy();
  return perSecond;
}
