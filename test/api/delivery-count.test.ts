// deliveryCountOf reads a message's delivery count from its reply subject instead of nats.js's full parse
// of it (msg.info): it must give the same count, redeliveries included, and fall back to msg.info for any
// reply it does not recognise rather than guess.

import { AckPolicy, type JsMsg, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryCountOf } from '../../api/jetstream.js';
import { NatsServer } from '../helpers/nats-server.js';

let nats: NatsServer;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await nats.connect();
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

/** A message whose reply is `reply`, and whose msg.info says `infoCount`. */
function fake(reply: string | undefined, infoCount: number): JsMsg {
  return { reply, info: { deliveryCount: infoCount } } as unknown as JsMsg;
}

/** A message with `reply` whose msg.info must not be needed. */
function withoutInfo(reply: string): JsMsg {
  return {
    reply,
    get info(): never {
      throw new Error('fell back to msg.info');
    },
  } as unknown as JsMsg;
}

describe('deliveryCountOf', () => {
  it("gives nats-server's delivery count, first delivery and redeliveries alike", async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'dc', subjects: ['dc.>'] });
    await jsm.consumers.add('dc', { durable_name: 'c', ack_policy: AckPolicy.Explicit, ack_wait: 30e9 });
    const js = nc.jetstream();
    for (let i = 0; i < 3; i++) await js.publish(`dc.e${i}`, String(i));
    const consumer = await js.consumers.get('dc', 'c');
    const seen: Array<[number, number]> = [];
    // Each event is nak'ed twice, then acked: deliveries 1, 2 and 3 of each.
    while (seen.length < 9) {
      const m = await consumer.next({ expires: 5000 });
      if (!m) throw new Error('no message within 5 s');
      // Read from the reply alone, as nats-server wrote it (the form without a domain: 8 dots).
      const reply = (m as JsMsg & { reply: string }).reply;
      expect(reply.split('.')).toHaveLength(9);
      seen.push([deliveryCountOf(withoutInfo(reply)), m.info.deliveryCount]);
      if (m.info.deliveryCount < 3) m.nak();
      else m.ack();
    }
    expect(seen.map(([ours, theirs]) => ours === theirs)).toEqual(Array(9).fill(true));
    expect(seen.map(([ours]) => ours).sort()).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3]);
  });

  it('reads the form with a domain and an account hash', () => {
    expect(
      deliveryCountOf(withoutInfo('$JS.ACK.hub.ACCHASH.events.fi_a__b.7.120.99.1733000000000000000.4.x1')),
    ).toBe(7);
    expect(
      deliveryCountOf(withoutInfo('$JS.ACK.hub.ACCHASH.events.fi_a__b.12.120.99.1733000000000000000.4')),
    ).toBe(12);
  });

  it('falls back to msg.info for a reply it does not recognise', () => {
    for (const reply of [
      undefined,
      '',
      '_INBOX.abc.def',
      '$JS.ACK.events.c.x.1.1.1.0', // a count that is not a number
      '$JS.ACK.events.c.0.1.1.1.0', // a count of 0 is no delivery
      '$JS.ACK.events.c.2.1.1', // too few tokens
      '$JS.NAK.events.c.2.1.1.1.0',
    ]) {
      expect(deliveryCountOf(fake(reply, 5))).toBe(5);
    }
  });
});
