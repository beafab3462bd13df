// Drills as an operator would run them, every piece a process: events sent through `dfn gateway`, delivered by
// `dfn runner` to a destination on 127.0.0.1, while the runner is SIGKILLed or nats-server restarts. A tenth of
// the events fail once, so retries wait in their schedules through the drill. Nothing accepted may be lost.

import { afterEach, describe, expect, it } from 'vitest';
import { topology } from '../../api/jetstream.js';
import { Destination } from '../helpers/destination.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { NatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait.js';
import { RunnerProcess, removeDir, writeConfigDir } from '../runner/harness.js';

const WRITE_KEY = 'drill_write_key';
const FUNCTION = `
async function onTrack(event, settings) {
  const res = await fetch(settings.url + '/track', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messageId: event.messageId }),
  });
  if (res.status >= 500) throw new RetryError('destination answered ' + res.status);
}
`;

/** One drill's processes, all stopped by dispose(). */
class Drill {
  readonly delivered = new Set<string>();
  private readonly failedOnce = new Set<string>();
  readonly runners: RunnerProcess[] = [];

  private constructor(
    readonly nats: NatsServer,
    readonly dest: Destination,
    readonly gateway: GatewayProcess,
    readonly dir: string,
  ) {
    dest.respond = (req) => {
      const id = req.json().messageId as string;
      // Every tenth event fails its first attempt.
      if (id.endsWith('0') && !this.failedOnce.has(id)) {
        this.failedOnce.add(id);
        return { status: 503 };
      }
      this.delivered.add(id);
      return undefined;
    };
  }

  static async start(): Promise<Drill> {
    const nats = await NatsServer.start();
    const dest = await Destination.start();
    const gateway = await GatewayProcess.start(nats.url, { [WRITE_KEY]: 'web' });
    const dir = writeConfigDir({
      natsUrl: nats.url,
      source: 'web',
      instance: { namespace: 'ops', name: 'drill' },
      functionSource: FUNCTION,
      settings: { url: dest.url },
      config: { retry: { maxAttempts: 5, delaysMs: [2000], jitter: 0 } },
    });
    return new Drill(nats, dest, gateway, dir);
  }

  startRunner(): RunnerProcess {
    const runner = RunnerProcess.start(this.dir);
    this.runners.push(runner);
    return runner;
  }

  /** Posts one /v1/batch; resends it (bounded) while the gateway answers 503/429, as Segment's clients do. */
  async send(ids: readonly string[]): Promise<void> {
    const body = JSON.stringify({
      batch: ids.map((messageId) => ({ type: 'track', event: 'Drill', userId: 'u-1', messageId })),
    });
    for (let attempt = 1; attempt <= 120; attempt++) {
      const res = await fetch(`${this.gateway.url}/v1/batch`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`,
        },
        body,
      }).catch(() => undefined);
      if (res?.status === 200) return;
      await res?.body?.cancel();
      if (res && res.status !== 503 && res.status !== 429) throw new Error(`gateway answered ${res.status}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error('the gateway did not accept a batch within 30 s');
  }

  /** Retries waiting for their next attempt (message schedules in the retry stream). */
  async pendingSchedules(): Promise<number> {
    const nc = await this.nats.connect();
    try {
      const t = topology('dfn');
      const info = await (await nc.jetstreamManager()).streams.info(t.retryStream, {
        subjects_filter: `${t.prefix}.sched.>`,
      });
      return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    } finally {
      await nc.close();
    }
  }

  missing(ids: readonly string[]): string[] {
    return ids.filter((id) => !this.delivered.has(id));
  }

  async dispose(): Promise<void> {
    for (const r of this.runners) await r.dispose();
    await this.gateway.stop();
    await this.dest.close();
    await this.nats.dispose();
    removeDir(this.dir);
  }
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('drills', { timeout: 240_000 }, () => {
  let drill: Drill | undefined;
  afterEach(async () => {
    await drill?.dispose();
    drill = undefined;
  });

  it('runner SIGKILLed twice mid-stream: every event sent through the gateway is delivered', async () => {
    drill = await Drill.start();
    const d = drill;
    const events = ids('kill', 3000);
    // The consumer delivers only what is published once it exists.
    await d.startRunner().consuming();
    // A third sent, killed past 600 deliveries; a third more, killed past 1,800; the rest after.
    for (const [part, threshold] of [
      [0, 600],
      [1, 1800],
    ] as const) {
      const slice = events.slice(part * 1000, (part + 1) * 1000);
      for (let i = 0; i < slice.length; i += 100) await d.send(slice.slice(i, i + 100));
      await waitFor(`${threshold} deliveries`, () => d.delivered.size >= threshold, 60_000, 5);
      // A second replica first, then the first is killed: its in-flight events go to the other.
      await d.startRunner().consuming();
      const victim = d.runners.at(-2)!;
      victim.kill('SIGKILL');
      expect(await victim.exit()).toEqual({ code: null, signal: 'SIGKILL' });
    }
    const rest = events.slice(2000);
    for (let i = 0; i < rest.length; i += 100) await d.send(rest.slice(i, i + 100));
    await waitFor(
      () => `every event delivered (missing ${d.missing(events).length})`,
      () => d.missing(events).length === 0,
      120_000,
      50,
    );
  });

  it('nats-server restarted while events are sent and retries wait: every accepted event is delivered', async () => {
    drill = await Drill.start();
    const d = drill;
    const runner = d.startRunner();
    await runner.consuming();
    const before = ids('before', 1000);
    for (let i = 0; i < before.length; i += 100) await d.send(before.slice(i, i + 100));
    // Some first attempts have failed: their retries are schedules in the stream when it restarts.
    await waitFor('deliveries under way', () => d.delivered.size >= 200, 60_000, 5);
    await waitFor('retries waiting in their schedules', async () => (await d.pendingSchedules()) > 0, 30_000);
    const restarted = d.nats.restart();
    const during = ids('during', 1000);
    const sending = (async () => {
      for (let i = 0; i < during.length; i += 100) await d.send(during.slice(i, i + 100));
    })();
    await restarted;
    await sending;
    await waitFor('the runner to reconnect', () => runner.log('reconnected to NATS'), 60_000);
    const all = [...before, ...during];
    await waitFor(
      () => `every event delivered (missing ${d.missing(all).length})`,
      () => d.missing(all).length === 0,
      120_000,
      50,
    );
    expect(runner.exitCode).toBeUndefined();
  });
});
