// `dfn gateway` as a process: --help teaches every flag, usage errors exit 2, flags fall back to env,
// logs are JSON lines without secrets, it starts without NATS, and SIGTERM stops it cleanly.

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreams, topology } from '../../api/jetstream.js';
import { type DfnRun, runDfn, spawnDfn } from '../helpers/dfn.js';
import { NatsServer } from '../helpers/nats-server.js';
import { freePort } from '../helpers/ports.js';
import { basic } from './harness.js';

function dfn(args: string[], env: Record<string, string> = {}): Promise<DfnRun> {
  return runDfn(args, { env, timeoutMs: 30_000 });
}

let dir: string;
let keysFile: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dfn-gateway-cli-'));
  keysFile = join(dir, 'write-keys.yaml');
  writeFileSync(keysFile, 'cli_key_1: web\n');
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('dfn gateway --help', () => {
  it('explains every flag with its env variable, the endpoints, the write-keys format and an example', async () => {
    const run = await dfn(['gateway', '--help']);
    expect(run.code).toBe(0);
    for (const text of [
      '--port',
      'DFN_GATEWAY_PORT',
      '--host',
      '--nats-url',
      'DFN_NATS_URL',
      '--nats-creds',
      '--write-keys',
      'DFN_WRITE_KEYS_FILE',
      '--prefix',
      '--publish-timeout',
      '--request-timeout',
      'DFN_GATEWAY_REQUEST_TIMEOUT_MS',
      '--shutdown-grace',
      'DFN_GATEWAY_SHUTDOWN_GRACE_MS',
      '--max-request-stored-bytes',
      'DFN_GATEWAY_MAX_REQUEST_STORED_BYTES',
      '--trust-proxy',
      'DFN_GATEWAY_TRUST_PROXY',
      '--max-connections',
      'DFN_GATEWAY_MAX_CONNECTIONS',
      '--create-streams',
      '/v1/batch',
      '/readyz',
      'Basic-auth username',
      'mapping of write key to source name',
      'Retry-After',
      'curl',
    ]) {
      expect(run.stdout).toContain(text);
    }
  });

  it('is listed in dfn --help', async () => {
    const run = await dfn(['--help']);
    expect(run.stdout).toMatch(/gateway .*Tracking API/);
  });
});

describe('usage errors exit 2 with a message', () => {
  it.each([
    [['gateway'], /--write-keys/],
    [['gateway', '-w', 'KEYS', '--port', '70000'], /port must be a whole number from 0 to 65535/],
    [['gateway', '-w', 'KEYS', '--port', 'http'], /port must be a whole number/],
    [['gateway', '-w', 'KEYS', '--prefix', 'a.b'], /invalid JetStream prefix/],
    [['gateway', '-w', 'KEYS', '--nats-url', 'http://x:4222'], /not a NATS URL/],
    [['gateway', '-w', 'KEYS', '--log-level', 'loud'], /log-level/],
    [['gateway', '-w', 'KEYS', '--publish-timeout', '5'], /publish timeout must be a whole number from 100/],
    [['gateway', '-w', 'KEYS', '--request-timeout', '0'], /request timeout must be a whole number from 100/],
    [['gateway', '-w', 'KEYS', '--shutdown-grace', '-5'], /shutdown grace period must be a whole number/],
    [['gateway', '-w', 'KEYS', '--trust-proxy', '10.0.0.0/33'], /not an IP address or CIDR range/],
    [['gateway', '-w', 'KEYS', '--trust-proxy', 'lb.local'], /not an IP address or CIDR range/],
    [['gateway', '-w', 'KEYS', '--max-request-stored-bytes', '1000'], /stored-bytes limit must be/],
    [['gateway', '-w', '/nonexistent/keys.yaml'], /write-keys file \/nonexistent\/keys.yaml: no such file/],
    [['gateway', '-w', 'KEYS', '--nats-creds', '/nonexistent.creds'], /cannot read --nats-creds/],
  ])('dfn %j', async (args, message) => {
    const run = await dfn(args.map((a) => (a === 'KEYS' ? keysFile : a)));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
  });

  it('rejects an invalid write-keys file at start-up, naming the problem', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'k: "not a subject*"\n');
    const run = await dfn(['gateway', '-w', bad]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('cannot be used in a NATS subject');
  });

  it('reads DFN_CREATE_STREAMS strictly as true or false', async () => {
    const run = await dfn(['gateway', '-w', keysFile], { DFN_CREATE_STREAMS: 'maybe' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('DFN_CREATE_STREAMS must be true or false, not "maybe"');
  });

  it('applies the same checks to env values', async () => {
    const run = await dfn(['gateway'], { DFN_WRITE_KEYS_FILE: keysFile, DFN_GATEWAY_PORT: '-1' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/port must be/);
  });
});

describe('running', () => {
  let nats: NatsServer;

  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterAll(async () => {
    await nats.dispose();
  });

  it('starts from env settings, accepts events, logs JSON lines without secrets, and stops on SIGTERM', async () => {
    const port = await freePort();
    const child = spawnDfn(['gateway', '--host', '127.0.0.1', '--create-streams'], {
      env: {
        DFN_GATEWAY_PORT: String(port),
        DFN_WRITE_KEYS_FILE: keysFile,
        DFN_NATS_URL: nats.url,
        DFN_PREFIX: 'clitest',
        DFN_LOG_LEVEL: 'debug',
      },
    });
    const logs = collectLines(child);
    try {
      await logs.waitFor((l) => l.msg === 'JetStream streams ready');
      await logs.waitFor((l) => l.msg === 'gateway started');

      const res = await fetch(`http://127.0.0.1:${port}/v1/track`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: basic('cli_key_1') },
        body: JSON.stringify({ userId: 'u', event: 'From the CLI' }),
      });
      expect(res.status).toBe(200);
      const nc = await nats.connect();
      const info = await (await nc.jetstreamManager()).streams.info('CLITEST_EVENTS');
      expect(info.state.messages).toBe(1);
      await nc.close();

      const line = await logs.waitFor((l) => l.url === '/v1/track');
      expect(line).toMatchObject({ status: 200, source: 'web', accepted: 1, msg: 'request completed' });

      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(logs.lines.some((l) => l.msg === 'shutting down: finishing in-flight requests')).toBe(true);
      expect(logs.raw()).not.toContain('cli_key_1');
      expect(logs.raw()).not.toContain(basic('cli_key_1'));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("serves its series and the process's default metrics, prefixed dfn_gateway_, on /metrics", async () => {
    const port = await freePort();
    const child = spawnDfn(['gateway', '--host', '127.0.0.1', '--port', String(port), '-w', keysFile], {
      env: { DFN_NATS_URL: nats.url, DFN_PREFIX: 'clitest', DFN_CREATE_STREAMS: 'true' },
    });
    const logs = collectLines(child);
    try {
      await logs.waitFor((l) => l.msg === 'gateway started');
      const unauthorized = await fetch(`http://127.0.0.1:${port}/v1/track`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'u', event: 'E' }),
      });
      expect(unauthorized.status).toBe(401);
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toMatch(/^dfn_gateway_write_keys 1$/m);
      expect(text).toMatch(/^dfn_gateway_requests_total\{route="\/v1\/track",status="401"\} 1$/m);
      expect(text).toMatch(/^dfn_gateway_process_cpu_seconds_total \d/m);
      expect(text).toMatch(/^# TYPE dfn_gateway_nodejs_eventloop_lag_seconds gauge$/m);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('DFN_CREATE_STREAMS', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterAll(async () => {
    await nats.dispose();
  });

  it.each([
    ['false', false],
    ['true', true],
  ])('=%s creates the streams: %s', async (value, created) => {
    const prefix = `envswitch${value}`;
    const child = spawnDfn(['gateway', '--host', '127.0.0.1', '--port', '0', '-w', keysFile], {
      env: { DFN_NATS_URL: nats.url, DFN_PREFIX: prefix, DFN_CREATE_STREAMS: value },
    });
    const logs = collectLines(child);
    try {
      await logs.waitFor((l) => l.msg === 'NATS connected');
      if (created) await logs.waitFor((l) => l.msg === 'JetStream streams ready');
      const nc = await nats.connect();
      try {
        const names: string[] = [];
        for await (const name of (await nc.jetstreamManager()).streams.names()) names.push(name);
        expect(names.includes(`${prefix.toUpperCase()}_EVENTS`)).toBe(created);
      } finally {
        await nc.close();
      }
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('--create-streams against streams the operator made', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterAll(async () => {
    await nats.dispose();
  });

  it('leaves them as they are (their retention is not brought down to its defaults)', async () => {
    const prefix = 'operatorowned';
    const t = topology(prefix);
    const nc = await nats.connect();
    try {
      const jsm = await nc.jetstreamManager();
      // With limits other than the gateway's defaults, as their owner keeps them: a cluster's three replicas
      // cannot be shown on one server, a month of events (not the default week) can.
      await ensureStreams(jsm, t, { eventsMaxAgeMs: 30 * 24 * 3600_000, storage: 'memory' });
      const before = (await jsm.streams.info(t.eventsStream)).config;
      const child = spawnDfn(
        ['gateway', '--host', '127.0.0.1', '--port', '0', '-w', keysFile, '--create-streams'],
        {
          env: { DFN_NATS_URL: nats.url, DFN_PREFIX: prefix },
        },
      );
      const logs = collectLines(child);
      try {
        const ready = await logs.waitFor((l) => l.msg === 'JetStream streams ready');
        expect(ready.keptAsTheyAre).toEqual(expect.arrayContaining([t.eventsStream, t.deadLetterStream]));
        expect((await jsm.streams.info(t.eventsStream)).config).toEqual(before);
      } finally {
        child.kill('SIGKILL');
      }
    } finally {
      await nc.close();
    }
  });
});

describe('without NATS', () => {
  it('starts anyway, says NATS is not reachable (credentials masked), and still stops on SIGTERM', async () => {
    const [port, natsPort] = [await freePort(), await freePort()];
    const child = spawnDfn(['gateway', '--host', '127.0.0.1', '--port', String(port), '-w', keysFile], {
      env: { DFN_NATS_URL: `nats://gw:s3cret@127.0.0.1:${natsPort}` },
    });
    const logs = collectLines(child);
    try {
      const line = await logs.waitFor((l) => l.msg === 'NATS not reachable yet');
      expect(line.nats).toBe(`nats://gw:***@127.0.0.1:${natsPort}`);
      await logs.waitFor((l) => l.msg === 'gateway started');
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(503);

      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(logs.raw()).not.toContain('s3cret');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

function collectLines(child: ChildProcess) {
  const lines: Array<Record<string, unknown>> = [];
  let raw = '';
  let buffer = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (d: Buffer) => {
    raw += d;
    buffer += d;
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      // Every stdout line must be JSON: that is the log format's promise.
      lines.push(JSON.parse(line));
      nl = buffer.indexOf('\n');
    }
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on('data', (d: Buffer) => {
    raw += d;
  });
  return {
    lines,
    raw: () => raw,
    async waitFor(match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
      for (let i = 0; i < 300; i++) {
        const found = lines.find(match);
        if (found) return found;
        if (child.exitCode !== null) break;
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
      throw new Error(`log line not seen; output so far:\n${raw}`);
    },
  };
}
