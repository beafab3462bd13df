// `dfn deliveries` and `dfn replay` name instances as kubectl does (`-n shop fi/orders`), keep the
// `<namespace>/<name>` form, and find the NATS of a running `dfn up` from its record when given no URL.
// Against a real nats-server; the running `dfn up` is its record (DFN_HOME) naming a live process.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DeadLetter,
  deadLetterSubject,
  deliveriesSubject,
  type InstanceRef,
} from '../../api/jetstream.js';
import { type RunningStack, writeRunningStack } from '../../local/up/running-stack.js';
import { runDfn } from '../helpers/dfn.js';
import { NatsServer } from '../helpers/nats-server.js';
import { freePort } from '../helpers/ports.js';
import { type Fixture, fixture, prepareTopology, STARTUP_TIMEOUT_MS, track } from '../runner/harness.js';

const SHOP: InstanceRef = { namespace: 'shop', name: 'orders' };

describe('instance names and the NATS of a running dfn up', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let f: Fixture;
  let home: string;

  const record = (messageId: string) => ({
    instance: SHOP,
    replica: 'runner-0',
    revision: '1',
    messageId,
    eventType: 'track',
    eventName: 'Order Completed',
    disposition: 'discard',
    errorType: 'BadRequest',
    message: 'boom',
    attempt: 1,
    maxAttempts: 10,
    batch: false,
    logs: [],
    requests: [],
    durationMs: 3,
    publishedAt: '2030-01-01T00:00:00.000Z',
    at: '2030-01-01T00:00:01.000Z',
  });

  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await nats.connect();
    f = await fixture(nc);
    await prepareTopology(f, { instance: SHOP });
    await f.js.publish(deliveriesSubject(f.t, SHOP), JSON.stringify(record('m-shop')));
    home = mkdtempSync(join(tmpdir(), 'dfn-home-'));
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await nc?.close();
    await nats?.dispose();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  const ids = (stdout: string) => (JSON.parse(stdout) as { messageId: string }[]).map((r) => r.messageId);

  it('accepts -n NAMESPACE with fi/NAME, functioninstance/NAME, the group form and a bare NAME', async () => {
    for (const arg of [
      'fi/orders',
      'functioninstance/orders',
      'functioninstances.dfn.dev/orders',
      'orders',
    ]) {
      const run = await runDfn(['deliveries', '-n', 'shop', arg, '--json', '--nats-url', nats.url]);
      expect({ arg, code: run.code, stderr: run.stderr }).toEqual({ arg, code: 0, stderr: '' });
      expect(ids(run.stdout)).toEqual(['m-shop']);
    }
    const long = await runDfn([
      'deliveries',
      '--namespace',
      'shop',
      'FI/orders',
      '--json',
      '--nats-url',
      nats.url,
    ]);
    expect(ids(long.stdout)).toEqual(['m-shop']);
  });

  it('keeps NAMESPACE/NAME, and -n repeating it; a contradicting -n is a usage error', async () => {
    const plain = await runDfn(['deliveries', 'shop/orders', '--json', '--nats-url', nats.url]);
    expect(ids(plain.stdout)).toEqual(['m-shop']);
    const same = await runDfn(['deliveries', '-n', 'shop', 'shop/orders', '--json', '--nats-url', nats.url]);
    expect(ids(same.stdout)).toEqual(['m-shop']);
    const clash = await runDfn(['deliveries', '-n', 'web', 'shop/orders', '--nats-url', nats.url]);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toBe('dfn deliveries: shop/orders is in namespace shop, but --namespace says web\n');
  });

  it('fi/NAME without -n means the default namespace; another kind is refused', async () => {
    const run = await runDfn(['deliveries', 'fi/orders', '--nats-url', nats.url]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('No failed deliveries recorded for default/orders.\n');
    const other = await runDfn(['replay', 'deployment.apps/orders', '--nats-url', nats.url]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('"deployment.apps" is not a FunctionInstance kind');
  });

  it('replay takes the same names: -n shop fi/orders replays that instance', async () => {
    const dead: DeadLetter = {
      instance: SHOP,
      replica: 'runner-0',
      revision: '1',
      event: track({}, { messageId: 'dead-shop' }),
      subject: 'dfn.events.web.track',
      streamSequence: 1,
      lastError: { errorType: 'Retry', message: 'destination answered 503' },
      attempts: 10,
      publishedAt: '2030-01-01T00:00:00.000Z',
      deadLetteredAt: '2030-01-01T04:00:00.000Z',
    };
    await f.js.publish(deadLetterSubject(f.t, SHOP), JSON.stringify(dead));
    const run = await runDfn(['replay', '-n', 'shop', 'fi/orders', '--json', '--nats-url', nats.url]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ instance: SHOP, replayed: 1, messageIds: ['dead-shop'] });
  });

  it('without --nats-url finds the NATS of the running dfn up its record names', async () => {
    // A live process stands for the running `dfn up`: the record is only trusted while its pid lives.
    const upProcess = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      const stack: RunningStack = {
        pid: upProcess.pid!,
        natsUrl: nats.url,
        kubeconfig: join(home, 'kubeconfig'),
        gatewayUrl: 'http://127.0.0.1:8080',
        writeKey: 'wk',
        source: 'web',
        stateDir: home,
        release: 'dfn',
        namespace: 'dfn-system',
        startedAt: new Date().toISOString(),
      };
      writeRunningStack(stack, { DFN_HOME: home });
      const found = await runDfn(['deliveries', '-n', 'shop', 'fi/orders', '--json'], {
        env: { DFN_HOME: home },
      });
      expect(found.stderr).toBe('');
      expect(ids(found.stdout)).toEqual(['m-shop']);

      // An explicit URL still wins over the record.
      const port = await freePort();
      const explicit = await runDfn(['deliveries', 'fi/orders', '--nats-url', `nats://127.0.0.1:${port}`], {
        env: { DFN_HOME: home },
      });
      expect(explicit.code).toBe(1);
      expect(explicit.stderr).toContain(`cannot reach NATS at nats://127.0.0.1:${port}`);
    } finally {
      upProcess.kill('SIGKILL');
      await new Promise((r) => upProcess.once('exit', r));
    }
    // Its process gone, the record is stale and ignored: the default URL is tried instead of the record's.
    expect(JSON.parse(readFileSync(join(home, 'up.json'), 'utf8')).natsUrl).toBe(nats.url);
    const stale = await runDfn(['deliveries', 'fi/orders'], { env: { DFN_HOME: home } });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('cannot reach NATS at nats://127.0.0.1:4222');
  });

  it('dfn --version prints package.json version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    for (const flag of ['--version', '-V']) {
      const run = await runDfn([flag]);
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(`${pkg.version}\n`);
    }
  });
});
