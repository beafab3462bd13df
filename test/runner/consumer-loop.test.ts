// The consumer loop against a real nats-server: a stop never strands messages the server already sent
// for a pull, so nothing waits out its ack wait after a graceful shutdown.

import type { JsMsg } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerName } from '../../api/jetstream.js';
import { silentProcessLogger } from '../../lib/telemetry.js';
import { ConsumerLoop } from '../../runner/consumer-loop.js';
import { InFlight } from '../../runner/in-flight.js';
import type { NatsServer } from '../helpers/nats-server.js';
import {
  consumerState,
  type Fixture,
  prepareTopology,
  publish,
  RunnerWorld,
  STARTUP_TIMEOUT_MS,
  TEST_INSTANCE,
  track,
  waitFor,
} from './harness.js';

describe('ConsumerLoop', () => {
  let w: RunnerWorld;
  let f: Fixture;
  let nats: NatsServer;

  beforeAll(async () => {
    w = await RunnerWorld.start();
    ({ f, nats } = w);
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await w?.dispose();
  });

  it('lets the pull under way finish when stopped, so no message the server sent is stranded', async () => {
    // Large events, so one pull's messages span many socket reads and are still arriving at stop().
    const padding = 'x'.repeat(4096);
    await publish(
      f,
      Array.from({ length: 400 }, () => track({ padding })),
    );
    const nc = await nats.connect();
    try {
      const consumer = await nc.jetstream().consumers.get(f.t.eventsStream, consumerName(TEST_INSTANCE));
      const inFlight = new InFlight(1000, f.t);
      const received: JsMsg[] = [];
      let stopping: Promise<void> | undefined;
      const loop = new ConsumerLoop(
        consumer,
        inFlight,
        (msg) => {
          received.push(msg);
          stopping ??= loop.stop();
        },
        silentProcessLogger(),
        // Well inside the consumer's 2 s ack wait, so no redelivery joins the pull before it ends.
        { expiresMs: 1000, minRoom: 1 },
      );
      loop.start();
      await (await waitFor('the first message', () => stopping && { stopping })).stopping;
      const { ackPending } = await consumerState(f, consumerName(TEST_INSTANCE));
      // Whatever the server delivered, the loop saw (a message it did not see would wait out ack_wait).
      expect(received.length).toBe(ackPending);
      expect(received.length).toBe(400);
      for (const m of received) m.ack();
      await nc.flush();
    } finally {
      await nc.close();
    }
  });

  it('reports a pull that fails (its consumer deleted) and pulls again once the consumer is back', async () => {
    const instance = { namespace: 'default', name: 'deleted-consumer' };
    await prepareTopology(f, { instance, source: instance.name });
    const nc = await nats.connect();
    try {
      const consumer = await nc.jetstream().consumers.get(f.t.eventsStream, consumerName(instance));
      await f.jsm.consumers.delete(f.t.eventsStream, consumerName(instance));
      const received: JsMsg[] = [];
      const loop = new ConsumerLoop(
        consumer,
        new InFlight(1000, f.t),
        (msg) => {
          received.push(msg);
          msg.ack();
        },
        silentProcessLogger(),
        { expiresMs: 1000, minRoom: 1 },
      );
      loop.start();
      await waitFor('the failed pull reported', () => !loop.healthy);
      await prepareTopology(f, { instance, source: instance.name });
      const events = Array.from({ length: 50 }, () => track());
      await publish(f, events, instance.name);
      await waitFor('every event received', () => received.length === events.length, 30_000);
      // Healthy again once a pull completes (this one ends at its expiry).
      await waitFor('a pull completed', () => loop.healthy);
      expect(received.map((m) => JSON.parse(m.string()).messageId).sort()).toEqual(
        events.map((e) => e.messageId).sort(),
      );
      await loop.stop();
    } finally {
      await nc.close();
    }
  });
});
