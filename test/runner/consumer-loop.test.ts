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
      const inFlight = new InFlight(1000);
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
});
