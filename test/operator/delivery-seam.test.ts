// The operator's side of the delivery seam (operator/delivery-seam.ts), alone: a stand-in for the tracker
// gives the numbers, so this proves what the core does with them — seeded from the persisted status, written
// into status and the Healthy condition, summed into the function, spaced per object, forgotten when the
// instance goes. test/operator/delivery-e2e.test.ts runs the real tracker in `dfn operator`.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliverySource, InstanceDelivery, Operator } from '../../operator/index.js';
import type { ObjectKey } from '../../operator/machinery/controller.js';
import { useNamespace } from '../helpers/kube.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  apply,
  condition,
  destinationFunction,
  functionInstance,
  read,
  remove,
  testOperator,
  waitForStatus,
} from '../helpers/operator.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('op-delivery');
let nats: NatsServer;
let operator: Operator;

/** Stand-in for operator/delivery/'s DeliveryTracker: numbers set by the test, onChange as the seam says. */
class StandInDelivery implements DeliverySource {
  readonly seeded = new Map<string, InstanceDelivery>();
  readonly forgotten: string[] = [];
  private readonly values = new Map<string, InstanceDelivery>();
  constructor(private readonly onChange: (key: ObjectKey) => void) {}
  async start() {}
  async stop() {}
  registerMetrics() {}
  seed(key: ObjectKey, status: InstanceDelivery) {
    this.seeded.set(key.name, status);
    if (!this.values.has(key.name)) this.values.set(key.name, status);
  }
  current(key: ObjectKey) {
    return this.values.get(key.name);
  }
  forget(key: ObjectKey) {
    this.forgotten.push(key.name);
    this.values.delete(key.name);
  }
  set(name: string, d: InstanceDelivery) {
    this.values.set(name, d);
    this.onChange({ namespace: ns.name, name });
  }
}

let delivery: StandInDelivery;

beforeAll(async () => {
  nats = await NatsServer.start();
  operator = testOperator({
    kc: ns.kc,
    namespace: ns.name,
    natsUrl: nats.url,
    statusIntervalMs: 1500,
    delivery: (ctx) => {
      delivery = new StandInDelivery(ctx.onChange);
      return delivery;
    },
  });
  await apply(ns.kc, destinationFunction(ns.name, 'fn', { code: 'async function onTrack() {}' }));
  for (const name of ['a', 'b']) {
    await apply(ns.kc, functionInstance(ns.name, name, { functionRef: { name: 'fn' }, source: 'web' }));
  }
  await waitForStatus(ns.kc, 'FunctionInstance', ns.name, 'b', 'revision 1', (s) => s.revision === 1);
}, 120_000);

afterAll(async () => {
  await operator?.stop();
  await nats?.dispose();
});

const counts = (delivered: number, failed = 0): InstanceDelivery => ({
  delivered,
  retrying: 1,
  failed,
  deadLettered: 0,
  filtered: 2,
  backlog: 7,
});

describe('delivery into status', () => {
  it('seeds each instance with its persisted status before reading it', () => {
    expect(delivery.seeded.get('a')).toMatchObject({ delivered: 0, failed: 0 });
  });

  it('writes the counts, lastError and Healthy; the function sums its instances', async () => {
    const time = new Date().toISOString();
    delivery.set('a', {
      ...counts(40, 3),
      lastError: { type: 'Timeout', message: 'took too long', time },
      healthy: { status: false, reason: 'DeliveriesFailing', message: '3 of 43 failed' },
    });
    delivery.set('b', {
      ...counts(2),
      healthy: { status: true, reason: 'DeliveriesSucceeding', message: 'fine' },
    });
    const a = await waitForStatus(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'a',
      'delivered 40',
      (s) => s.delivered === 40,
    );
    expect(a).toMatchObject({
      retrying: 1,
      failed: 3,
      filtered: 2,
      backlog: 7,
      lastError: { type: 'Timeout', time },
    });
    expect(condition(a, 'Healthy')).toMatchObject({ status: 'False', reason: 'DeliveriesFailing' });
    const fn = await waitForStatus(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'fn',
      'summed',
      (s) => s.delivered === 42,
    );
    expect(fn).toMatchObject({ instances: 2, delivered: 42, retrying: 2, failed: 3 });
  });

  it('coalesces a burst of changes into writes spaced by the interval', async () => {
    const before = (await read(ns.kc, 'FunctionInstance', ns.name, 'b'))!.metadata.resourceVersion;
    let versions = 0;
    let last = before;
    const started = Date.now();
    for (let n = 3; n <= 30; n++) {
      delivery.set('b', counts(n));
      await new Promise((r) => setTimeout(r, 100));
      const rv = (await read(ns.kc, 'FunctionInstance', ns.name, 'b'))!.metadata.resourceVersion;
      if (rv !== last) versions++;
      last = rv;
    }
    const elapsedMs = Date.now() - started;
    await waitForStatus(ns.kc, 'FunctionInstance', ns.name, 'b', 'the last value', (s) => s.delivered === 30);
    // 28 changes over ~3 s: at most one write per 1.5 s interval (+1 for the first), never one per change.
    expect(versions).toBeLessThanOrEqual(Math.ceil(elapsedMs / 1500) + 1);
  });

  it('forgets an instance once its finalizer ran', async () => {
    await remove(ns.kc, 'FunctionInstance', ns.name, 'a');
    await waitFor('a to be forgotten', () => delivery.forgotten.includes('a'));
    const fn = await waitForStatus(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'fn',
      'one instance',
      (s) => s.instances === 1,
    );
    expect(fn.delivered).toBe(30);
  });
});
