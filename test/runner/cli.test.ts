// The command line of the runner and its tools: clear errors for bad config, bad code and unreachable
// NATS (nothing consumed), help that teaches, and `dfn deliveries` / `dfn replay` output.

import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeadLetter, DeliveryRecord } from '../../api/jetstream.js';
import { consumerName, deadLetterSubject, deliveriesSubject } from '../../api/jetstream.js';
import { runnerConfigReference } from '../../api/runner-config.js';
import { NatsServer } from '../helpers/nats-server.js';
import { freePort } from '../helpers/ports.js';
import {
  consumerState,
  deliveryRecord,
  type Fixture,
  fixture,
  prepareTopology,
  publish,
  removeDir,
  runDfn,
  STARTUP_TIMEOUT_MS,
  TEST_INSTANCE,
  track,
  writeConfigDir,
} from './harness.js';

describe('dfn runner: refusing to start', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let f: Fixture;
  const dirs: string[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await nats.connect();
    f = await fixture(nc);
    await prepareTopology(f);
    await publish(f, [track()]);
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await nc?.close();
    await nats?.dispose();
    for (const d of dirs) removeDir(d);
  });

  const dir = (options: Partial<Parameters<typeof writeConfigDir>[0]> = {}) => {
    const d = writeConfigDir({
      natsUrl: nats.url,
      functionSource: 'async function onTrack() {}',
      ...options,
    });
    dirs.push(d);
    return d;
  };

  it('exits 2 naming the file and field of a bad config, and consumes nothing', async () => {
    const d = dir({
      config: { batching: { enabled: true, maxSize: 1000 }, retry: { maxAtempts: 3 } } as never,
    });
    const result = await runDfn(['runner', '--config', d]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`dfn runner: invalid runner config in ${d}:`);
    expect(result.stderr).toContain('config.yaml: batching.maxSize: must be at most 400 (got 1000)');
    expect(result.stderr).toContain(
      'config.yaml: retry.maxAtempts: unknown field (did you mean "maxAttempts"?)',
    );
    expect(result.stdout).toBe('');
    expect(await consumerState(f, consumerName(TEST_INSTANCE))).toMatchObject({ pending: 1, delivered: 0 });
  });

  it('exits 2 with the line and column of a syntax error in the function', async () => {
    const d = dir({ functionSource: 'async function onTrack(event) {\n  return event.;\n}\n' });
    const result = await runDfn(['runner', '--config', d]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/function\.js: .*line 2, column \d+/);
    expect(await consumerState(f, consumerName(TEST_INSTANCE))).toMatchObject({ pending: 1, delivered: 0 });
  });

  it('exits 1 with a clear error when NATS cannot be reached', async () => {
    const port = await freePort();
    const d = dir({ natsUrl: `nats://127.0.0.1:${port}`, config: { nats: { connectTimeoutMs: 1500 } } });
    const result = await runDfn(['runner', '--config', d]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(
        `^dfn runner: cannot reach NATS at nats://127\\.0\\.0\\.1:${port} \\(nats\\.url\\): connection refused; gave up after \\d+ attempts in 2s \\(nats\\.connectTimeoutMs\\)\\n$`,
      ),
    );
  });

  it('--check validates the directory and the function without touching NATS', async () => {
    const d = dir({ settings: { region: 'eu' }, secrets: { apiKey: 'k' } });
    const result = await runDfn(['runner', '--config', d, '--check']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${d}: valid`);
    expect(result.stdout).toContain('handlers: onTrack');
    expect(result.stdout).toContain('settings: 2 (1 sensitive)');
  });

  it('exits 2 when no config directory is given', async () => {
    const result = await runDfn(['runner'], { DFN_RUNNER_CONFIG: '' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--config <dir>');
  });
});

describe('dfn runner help', () => {
  it('--help explains the config directory, delivery semantics, signals and exit codes', async () => {
    const { code, stdout } = await runDfn(['runner', '--help']);
    expect(code).toBe(0);
    for (const text of [
      'config.yaml',
      'function.js',
      'settings.json',
      'secrets/<name>',
      'SIGTERM',
      'Exit status',
      '--explain',
    ]) {
      expect(stdout).toContain(text);
    }
  });

  it('--explain prints the field reference generated from the schema', async () => {
    const { code, stdout } = await runDfn(['runner', '--explain']);
    expect(code).toBe(0);
    expect(stdout).toContain(runnerConfigReference());
  });
});

describe('dfn deliveries and dfn replay', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let f: Fixture;

  const record = deliveryRecord({
    revision: 'rev-7',
    nextAttemptAt: '2030-01-01T00:01:00.000Z',
    logs: ['posting order m-1'],
    requests: [{ method: 'POST', url: 'https://api.example.com/orders', status: 503, durationMs: 12 }],
  });

  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await nats.connect();
    f = await fixture(nc);
    await prepareTopology(f);
    await f.js.publish(
      deliveriesSubject(f.t, TEST_INSTANCE),
      JSON.stringify({ ...record, messageId: 'm-0', at: '2030-01-01T00:00:10.000Z' }),
    );
    await f.js.publish(deliveriesSubject(f.t, TEST_INSTANCE), JSON.stringify(record));
    const dead: DeadLetter = {
      instance: TEST_INSTANCE,
      replica: 'runner-0',
      revision: 'rev-7',
      event: track({}, { messageId: 'dead-1' }),
      subject: 'dfn.events.web.track',
      streamSequence: 1,
      lastError: { errorType: 'Retry', message: 'destination answered 503' },
      attempts: 10,
      publishedAt: '2030-01-01T00:00:00.000Z',
      deadLetteredAt: '2030-01-01T04:00:00.000Z',
    };
    await f.js.publish(deadLetterSubject(f.t, TEST_INSTANCE), JSON.stringify(dead));
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  it('shows the newest failed deliveries first, with error, logs and requests', async () => {
    const { code, stdout, stderr } = await runDfn(['deliveries', 'default/crm', '--nats-url', nats.url]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        'Failed deliveries of default/crm, newest first (2 of 2):',
        '',
        '2030-01-01T00:00:30.000Z  Retry  will be retried (next attempt 2030-01-01T00:01:00.000Z)',
        '  event     track "Order Completed", messageId m-1',
        '  error     destination answered 503',
        '  attempt   2 of 10, 15 ms, revision rev-7, replica runner-0',
        '  logs',
        '    posting order m-1',
        '  requests',
        '    POST https://api.example.com/orders → 503 (12 ms)',
        '',
        '2030-01-01T00:00:10.000Z  Retry  will be retried (next attempt 2030-01-01T00:01:00.000Z)',
        '  event     track "Order Completed", messageId m-0',
        '  error     destination answered 503',
        '  attempt   2 of 10, 15 ms, revision rev-7, replica runner-0',
        '  logs',
        '    posting order m-1',
        '  requests',
        '    POST https://api.example.com/orders → 503 (12 ms)',
        '',
        '1 event is dead-lettered: `dfn replay default/crm` sends it again.',
        '',
      ].join('\n'),
    );
  });

  it('prints JSON with --json, limited and filtered by messageId', async () => {
    const env = { DFN_NATS_URL: nats.url };
    const limited = await runDfn(['deliveries', 'default/crm', '--json', '--limit', '1'], env);
    expect(JSON.parse(limited.stdout)).toEqual([record]);
    const filtered = await runDfn(['deliveries', 'default/crm', '--json', '--message-id', 'm-0'], env);
    expect(JSON.parse(filtered.stdout).map((r: DeliveryRecord) => r.messageId)).toEqual(['m-0']);
  });

  it('says so when an instance has no failed deliveries', async () => {
    const { code, stdout } = await runDfn(['deliveries', 'default/quiet', '--nats-url', nats.url]);
    expect(code).toBe(0);
    expect(stdout).toBe('No failed deliveries recorded for default/quiet.\n');
  });

  it('replay --dry-run lists without publishing; an unknown --message-id exits 1 naming it', async () => {
    const dry = await runDfn(['replay', 'default/crm', '--dry-run', '--nats-url', nats.url]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toBe(
      'Would replay 1 dead-lettered event of default/crm:\n  dead-1  track "Order Completed"  Retry: destination answered 503\n',
    );
    const unknown = await runDfn(['replay', 'default/crm', '--message-id', 'nope', '--nats-url', nats.url]);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe(
      'Replayed 0 of 0 dead-lettered events selected for default/crm.\n' +
        'Requested 1 messageId: 0 dead-lettered, 1 not.\n',
    );
    expect(unknown.stderr).toBe('Not dead-lettered for default/crm: nope\n');
  });

  it('replay says how many it replayed, as JSON too', async () => {
    const result = await runDfn(['replay', 'default/crm', '--json', '--nats-url', nats.url]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      replayed: 1,
      messageIds: ['dead-1'],
      subject: 'dfn.replay.default.crm',
    });
    const again = await runDfn(['replay', 'default/crm', '--nats-url', nats.url]);
    expect(again.stdout).toBe('No dead-lettered events for default/crm: nothing to replay.\n');
  });

  it('rejects a malformed instance reference as a usage error', async () => {
    const result = await runDfn(['deliveries', 'default/crm/x', '--nats-url', nats.url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'expected fi/NAME, functioninstance/NAME or NAMESPACE/NAME, e.g. -n shop fi/orders (got "default/crm/x")',
    );
  });

  it('exits 1 with a clear error when NATS cannot be reached', async () => {
    const port = await freePort();
    const result = await runDfn(['replay', 'default/crm', '--nats-url', `nats://127.0.0.1:${port}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `dfn replay: cannot reach NATS at nats://127.0.0.1:${port} (--nats-url): connection refused\n`,
    );
  });
});

describe('dfn deliveries against a NATS without the platform', () => {
  it('says which stream is missing instead of showing nothing', async () => {
    const nats = await NatsServer.start();
    try {
      const result = await runDfn(['deliveries', 'default/crm', '--prefix', 'other', '--nats-url', nats.url]);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        'dfn deliveries: NATS has no stream OTHER_DELIVERIES: is the prefix right, and is the platform installed on this NATS?\n',
      );
    } finally {
      await nats.dispose();
    }
  });
});
