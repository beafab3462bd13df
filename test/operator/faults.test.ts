// A bad day becomes status, retried with backoff: NATS unreachable (ConsumerReady=False, the operator not
// ready), NATS back with its streams and consumers lost (all made again), and runner pods that never become
// ready (RunnerNotReady once the Deployment's progress deadline passed).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerName, topology } from '../../api/jetstream.js';
import type { Operator } from '../../operator/index.js';
import { useNamespace } from '../helpers/kube.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  apply,
  condition,
  destinationFunction,
  functionInstance,
  TEST_IMAGE,
  testOperator,
  waitForCondition,
} from '../helpers/operator.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('op-faults');
let nats: NatsServer;
let operator: Operator;

beforeAll(async () => {
  nats = await NatsServer.start();
  operator = testOperator({
    kc: ns.kc,
    namespace: ns.name,
    natsUrl: nats.url,
    runner: { image: TEST_IMAGE, natsUrl: nats.url, natsAuth: { kind: 'none' }, progressDeadlineSeconds: 10 },
  });
  await apply(ns.kc, destinationFunction(ns.name, 'fn', { code: 'async function onTrack() {}' }));
  await apply(ns.kc, functionInstance(ns.name, 'before', { functionRef: { name: 'fn' }, source: 'web' }));
  await waitForCondition(ns.kc, 'FunctionInstance', ns.name, 'before', 'ConsumerReady', 'True');
}, 120_000);

afterAll(async () => {
  await operator?.stop();
  await nats?.dispose();
});

async function hasConsumer(name: string): Promise<boolean> {
  const nc = await nats.connect();
  try {
    const jsm = await nc.jetstreamManager();
    return await jsm.consumers
      .info(topology('dfn').eventsStream, consumerName({ namespace: ns.name, name }))
      .then(
        () => true,
        () => false,
      );
  } finally {
    await nc.close();
  }
}

describe('NATS unreachable', () => {
  it('an instance says so (ConsumerReady=False, NatsUnavailable) and the operator is not ready', async () => {
    await nats.stop();
    await apply(ns.kc, functionInstance(ns.name, 'during', { functionRef: { name: 'fn' }, source: 'web' }));
    const status = await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'during',
      'ConsumerReady',
      'False',
      'NatsUnavailable',
    );
    expect(condition(status, 'ConsumerReady')!.message).toContain('NATS is not available');
    expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: 'NatsUnavailable' });
    await waitFor('the operator to report NATS', () => !operator.readiness().ready);
    expect(operator.readiness().reason).toContain('NATS is not available');
  });

  it('back (its memory streams lost): streams and every consumer are made again, the instance recovers', async () => {
    await nats.restart();
    await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'during',
      'ConsumerReady',
      'True',
      undefined,
      60_000,
    );
    await waitFor(
      'both consumers to exist again',
      async () => (await hasConsumer('before')) && (await hasConsumer('during')),
      60_000,
    );
    await waitFor('the operator to be ready', () => operator.readiness().ready);
  });
});

describe('runner pods that never become ready', () => {
  it('show as RunnerNotReady once the progress deadline passed', async () => {
    // No kubelet runs in this file: the pods stay Pending, and kube-controller-manager gives up after 10 s.
    const status = await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'before',
      'RunnerReady',
      'False',
      'RunnerNotReady',
      90_000,
    );
    expect(condition(status, 'RunnerReady')!.message).toMatch(/did not become ready: .*progress/i);
    expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: 'RunnerNotReady' });
  }, 120_000);
});
