// Who may change the streams: ensureStreams (the operator, their one owner) creates them or brings them up
// to its limits; createMissingStreams (the gateway's --create-streams, the runner's nats.ensureTopology, for
// local use) creates the missing ones and never touches the others, so a process started with its
// defaults against the operator's NATS cannot shorten the events' retention or drop replicas.

import type { JetStreamManager, NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMissingStreams, ensureStreams, streamConfigs, topology } from '../../api/jetstream.js';
import { NatsServer } from '../helpers/nats-server.js';

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await nats.connect();
  jsm = await nc.jetstreamManager();
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

const HOUR_NS = 3600 * 1e9;
/** Limits an operator might be installed with: not the defaults the local switches use. */
const OPERATOR_LIMITS = {
  eventsMaxAgeMs: 30 * 24 * 3600_000,
  eventsMaxBytes: 64 * 1024 * 1024,
  deadLetterMaxAgeMs: 60 * 24 * 3600_000,
  storage: 'memory' as const,
};

async function configs(prefix: string) {
  return Promise.all(
    streamConfigs(topology(prefix)).map(async (c) => (await jsm.streams.info(c.name!)).config),
  );
}

describe('streams and their owner', () => {
  it('createMissingStreams leaves streams the operator made exactly as they are', async () => {
    const t = topology('owned');
    await ensureStreams(jsm, t, OPERATOR_LIMITS);
    const before = await configs('owned');
    expect(before.find((c) => c.name === t.eventsStream)).toMatchObject({
      max_age: 30 * 24 * HOUR_NS,
      max_bytes: 64 * 1024 * 1024,
    });

    const kept = await createMissingStreams(jsm, t, { storage: 'memory' });
    expect(kept).toEqual(streamConfigs(t).map((c) => c.name));
    expect(await configs('owned')).toEqual(before);
  });

  it('createMissingStreams creates only the missing ones, with the limits it is given', async () => {
    const t = topology('partial');
    await ensureStreams(jsm, t, OPERATOR_LIMITS);
    const events = streamConfigs(t).find((c) => c.name === t.eventsStream)!;
    const others = streamConfigs(t).filter((c) => c.name !== t.eventsStream);
    await jsm.streams.delete(events.name!);

    const kept = await createMissingStreams(jsm, t, { storage: 'memory', eventsMaxAgeMs: 3600_000 });
    expect(kept).toEqual(others.map((c) => c.name));
    expect((await jsm.streams.info(events.name!)).config.max_age).toBe(HOUR_NS);
    // The others still carry the operator's limits.
    const deadLetters = streamConfigs(t, OPERATOR_LIMITS).find((c) => c.name === t.deadLetterStream)!;
    expect((await jsm.streams.info(t.deadLetterStream)).config.max_age).toBe(deadLetters.max_age);
  });

  it('two processes creating the missing streams at once both succeed, and each stream exists once', async () => {
    const t = topology('racing');
    const [a, b] = await Promise.all([
      createMissingStreams(jsm, t, { storage: 'memory' }),
      createMissingStreams(jsm, t, { storage: 'memory' }),
    ]);
    const names = streamConfigs(t).map((c) => c.name!);
    // No stream was left as it was by both: it did not exist, so one of them (at least) created it.
    expect(a.filter((n) => b.includes(n))).toEqual([]);
    for (const name of names) expect((await jsm.streams.info(name)).config.name).toBe(name);
    const listed = (await jsm.streams.names().next()).filter((n) => n.startsWith('RACING_'));
    expect(listed.sort()).toEqual([...names].sort());
  });

  it('ensureStreams, the owner, still brings existing streams up to its limits', async () => {
    const t = topology('updated');
    await createMissingStreams(jsm, t, { storage: 'memory' });
    expect((await jsm.streams.info(t.eventsStream)).config.max_age).toBe(7 * 24 * HOUR_NS);
    await ensureStreams(jsm, t, OPERATOR_LIMITS);
    expect((await jsm.streams.info(t.eventsStream)).config.max_age).toBe(30 * 24 * HOUR_NS);
  });
});
