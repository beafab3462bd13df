// `dfn replay` at scale, and the credentials `dfn deliveries` / `dfn replay` accept: every selected dead letter
// replayed once in one run, counts that add up, and the token and user + password forms of the runner.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DeadLetter,
  deadLetterSubject,
  ensureStreams,
  type InstanceRef,
  replaySubject,
  topology,
} from '../../api/jetstream.js';
import { countSubject } from '../../runner/stream-reader.js';
import { NatsServer } from '../helpers/nats-server.js';
import { type Fixture, RunnerWorld, runDfn, STARTUP_TIMEOUT_MS, track } from './harness.js';

function deadLetterOf(instance: InstanceRef, messageId: string, seq: number): DeadLetter {
  return {
    instance,
    replica: 'runner-0',
    revision: 'rev-1',
    event: track({ seq }, { messageId }),
    subject: 'dfn.events.web.track',
    streamSequence: seq,
    lastError: { errorType: 'Retry', message: 'destination answered 503' },
    attempts: 10,
    crashes: 0,
    publishedAt: new Date().toISOString(),
    deadLetteredAt: new Date().toISOString(),
  };
}

async function deadLetterMany(f: Fixture, instance: InstanceRef, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${instance.name}-${i}`);
  for (let i = 0; i < n; i += 200) {
    await Promise.all(
      ids
        .slice(i, i + 200)
        .map((id, j) =>
          f.js.publish(
            deadLetterSubject(f.t, instance),
            JSON.stringify(deadLetterOf(instance, id, i + j + 1)),
          ),
        ),
    );
  }
  return ids;
}

describe('dfn replay of many dead letters', { timeout: 180_000 }, () => {
  let w: RunnerWorld;
  let f: Fixture;

  beforeAll(async () => {
    w = await RunnerWorld.start();
    f = w.f;
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await w?.dispose();
  });

  const replayed = async (instance: InstanceRef) =>
    await countSubject(f.jsm, f.t.eventsStream, replaySubject(f.t, instance));
  const stillDead = async (instance: InstanceRef) =>
    await countSubject(f.jsm, f.t.deadLetterStream, deadLetterSubject(f.t, instance));

  it('replays all 1,000 dead letters of an instance once, in one run', async () => {
    const instance = { namespace: 'default', name: 'bulk' };
    const ids = await deadLetterMany(f, instance, 1000);
    const run = await runDfn(['replay', 'default/bulk', '--json', '--nats-url', w.nats.url], {}, 120_000);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out).toMatchObject({ selected: 1000, replayed: 1000, failed: 0, notRemoved: 0, notFound: [] });
    expect([...out.messageIds].sort()).toEqual([...ids].sort());
    expect(await replayed(instance)).toBe(1000);
    expect(await stillDead(instance)).toBe(0);

    const again = await runDfn(['replay', 'default/bulk', '--nats-url', w.nats.url]);
    expect(again.stdout).toBe('No dead-lettered events for default/bulk: nothing to replay.\n');
    expect(await replayed(instance)).toBe(1000);
  });

  it('--message-id with 300 ids finds all 300, names the ones that are not there, and exits 1', async () => {
    const instance = { namespace: 'default', name: 'picked' };
    const ids = await deadLetterMany(f, instance, 1000);
    const wanted = ids.filter((_, i) => i % 3 === 0).slice(0, 300);
    expect(wanted).toHaveLength(300);
    const args = [...wanted, 'missing-1', 'missing-2'].flatMap((id) => ['--message-id', id]);
    const run = await runDfn(['replay', 'default/picked', ...args, '--nats-url', w.nats.url], {}, 120_000);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe(
      'Replayed 300 of 300 dead-lettered events selected for default/picked (removed from the dead-letter stream).\n' +
        'Requested 302 messageIds: 300 dead-lettered, 2 not.\n',
    );
    expect(run.stderr).toBe('Not dead-lettered for default/picked: missing-1, missing-2\n');
    expect(await replayed(instance)).toBe(300);
    expect(await stillDead(instance)).toBe(700);
  });
});

describe('dfn deliveries and dfn replay credentials', { timeout: 120_000 }, () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dfn-creds-'));
    writeFileSync(join(dir, 'token'), 's3cret-token\n');
    writeFileSync(join(dir, 'password'), 'pa55word\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const withServer = async (
    args: string[],
    client: Record<string, string>,
    body: (url: string) => Promise<void>,
  ) => {
    const nats = await NatsServer.start(args, client);
    try {
      const nc = await nats.connect();
      await ensureStreams(await nc.jetstreamManager(), topology('dfn'));
      await nc.close();
      await body(nats.url);
    } finally {
      await nats.dispose();
    }
  };

  it('takes a token file, as the runner does; without it the server refuses', async () => {
    await withServer(['--auth', 's3cret-token'], { token: 's3cret-token' }, async (url) => {
      const ok = await runDfn([
        'deliveries',
        'default/crm',
        '--nats-url',
        url,
        '--nats-token-file',
        join(dir, 'token'),
      ]);
      expect(ok.stderr).toBe('');
      expect(ok.stdout).toBe('No failed deliveries recorded for default/crm.\n');
      const refused = await runDfn(['replay', 'default/crm', '--nats-url', url]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('authorization violation');
    });
  });

  it('takes a user and a password file', async () => {
    await withServer(
      ['--user', 'ops', '--pass', 'pa55word'],
      { user: 'ops', pass: 'pa55word' },
      async (url) => {
        const env = { DFN_NATS_USER: 'ops', DFN_NATS_PASSWORD_FILE: join(dir, 'password') };
        const ok = await runDfn(['replay', 'default/crm', '--nats-url', url], env);
        expect(ok.stderr).toBe('');
        expect(ok.stdout).toBe('No dead-lettered events for default/crm: nothing to replay.\n');
        expect(ok.code).toBe(0);
      },
    );
  });

  it('refuses two credential forms at once, or a user without a password file, as usage errors', async () => {
    const both = await runDfn([
      'deliveries',
      'default/crm',
      '--nats-creds',
      join(dir, 'token'),
      '--nats-token-file',
      join(dir, 'token'),
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toBe('dfn deliveries: use only one of --nats-creds, --nats-token-file\n');
    const user = await runDfn(['replay', 'default/crm', '--nats-user', 'ops']);
    expect(user.code).toBe(2);
    expect(user.stderr).toBe('dfn replay: --nats-user needs --nats-password-file\n');
  });
});
