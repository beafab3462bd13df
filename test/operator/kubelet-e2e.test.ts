// End to end with runner processes: the operator's runner Deployments are run by the local kubelet as real
// `dfn runner` processes, fed by events published for the source, delivering to a destination server on
// 127.0.0.1. A new revision rolls without losing an event, a changed Secret rolls only the pods of the
// instance that uses it, and deleting an instance stops its delivery.

import { CoreV1Api } from '@kubernetes/client-node';
import type { JetStreamClient, NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventSubject, topology } from '../../api/jetstream.js';
import type { Operator } from '../../operator/index.js';
import { Destination } from '../helpers/destination.js';
import { kubectl, useNamespace } from '../helpers/kube.js';
import { DFN_IMAGE, POD_TEST_TIMEOUT_MS, useKubelet } from '../helpers/kubelet.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  apply,
  destinationFunction,
  functionInstance,
  read,
  remove,
  testOperator,
  waitForCondition,
  waitForStatus,
} from '../helpers/operator.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('op-e2e');
useKubelet(ns);
let nats: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let dest: Destination;
let operator: Operator;
const t = topology('dfn');

const code = (rev: number) => `
async function onTrack(event, settings) {
  const res = await fetch(settings.endpoint + '/' + settings.route, {
    method: 'POST',
    headers: { 'x-rev': '${rev}', authorization: 'Bearer ' + settings.token },
    body: JSON.stringify({ id: event.messageId }),
  });
  if (!res.ok) throw new RetryError('destination answered ' + res.status);
}
`;
const SETTINGS = [
  { name: 'endpoint', type: 'string' as const, required: true },
  { name: 'route', type: 'string' as const, required: true },
  { name: 'token', type: 'string' as const, sensitive: true, required: true },
];

const instance = (name: string, secret: string) =>
  functionInstance(ns.name, name, {
    functionRef: { name: 'fn' },
    source: 'web',
    settings: { endpoint: dest.url, route: name },
    secretSettings: { token: { secretKeyRef: { name: secret, key: 'token' } } },
    network: { allowPrivateNetwork: true },
    consumer: { ackWaitMs: 5000 },
  });

let published = 0;
async function publish(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `m-${++published}`;
    ids.push(id);
    await js.publish(
      eventSubject(t, 'web', 'track'),
      JSON.stringify({ type: 'track', event: 'E', userId: 'u', messageId: id }),
      {
        msgID: `web:${id}`,
      },
    );
  }
  return ids;
}

const received = (route: string) =>
  dest.requests
    .filter((r) => r.url === `/${route}`)
    .map((r) => ({ id: r.json().id as string, rev: r.headers['x-rev'] }));

const podList = async (instanceName: string) =>
  (
    await ns.kc.makeApiClient(CoreV1Api).listNamespacedPod({
      namespace: ns.name,
      labelSelector: `dfn.dev/function-instance=${instanceName}`,
    })
  ).items;
/** The revision each pod of the instance runs, terminating ones included. */
const revisionsOfPods = async (instanceName: string) =>
  (await podList(instanceName)).map((p) => p.metadata?.annotations?.['dfn.dev/revision']);

const podsOf = async (instanceName: string) =>
  (await podList(instanceName))
    .filter((p) => !p.metadata?.deletionTimestamp)
    .map((p) => p.metadata!.name!)
    .sort();

beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await nats.connect();
  js = nc.jetstream();
  dest = await Destination.start();
  const core = ns.kc.makeApiClient(CoreV1Api);
  for (const name of ['token-a', 'token-b']) {
    await core.createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name }, stringData: { token: `${name}-1` } },
    });
  }
  operator = testOperator({
    kc: ns.kc,
    namespace: ns.name,
    natsUrl: nats.url,
    runner: { image: DFN_IMAGE, natsUrl: nats.url, natsAuth: { kind: 'none' } },
    allowPrivateNetwork: [ns.name],
  });
  await apply(ns.kc, destinationFunction(ns.name, 'fn', { code: code(1), settings: SETTINGS }));
  await apply(ns.kc, instance('a', 'token-a'));
  await apply(ns.kc, instance('b', 'token-b'));
  for (const name of ['a', 'b']) {
    await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      name,
      'Ready',
      'True',
      'Deployed',
      POD_TEST_TIMEOUT_MS,
    );
  }
}, POD_TEST_TIMEOUT_MS * 2);

afterAll(async () => {
  await operator?.stop();
  await nc?.close();
  await dest?.close();
  await nats?.dispose();
});

describe('runner processes started by the local kubelet', { timeout: POD_TEST_TIMEOUT_MS }, () => {
  it('deliver the events published for the source to the destination, with the Secret value', async () => {
    const ids = await publish(10);
    await waitFor(
      '10 deliveries to each instance',
      () => received('a').length >= 10 && received('b').length >= 10,
      120_000,
    );
    expect(new Set(received('a').map((r) => r.id))).toEqual(new Set(ids));
    const auth = dest.requests.find((r) => r.url === '/a')!.headers.authorization;
    expect(auth).toBe('Bearer token-a-1');
    const run = await kubectl(['get', 'destfn,fi'], { namespace: ns.name });
    expect(run.stdout).toMatch(/functioninstance\.dfn\.dev\/a\s+fn\s+1\s+True/);
    expect(run.stdout).toMatch(/destinationfunction\.dfn\.dev\/fn\s+True\s+1\s+\["onTrack"\]\s+2/);
  });

  it('roll to a new revision without losing an event published during the roll', async () => {
    const during: string[] = [];
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        during.push(...(await publish(1)));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await apply(ns.kc, destinationFunction(ns.name, 'fn', { code: code(2), settings: SETTINGS }));
    await waitForStatus(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'a',
      'revision 2, ready',
      (s) =>
        s.revision === 2 && s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
      POD_TEST_TIMEOUT_MS,
    );
    // Every revision-1 pod gone entirely, not only terminating: a terminating runner finishes its last pull.
    await waitFor(
      'only revision-2 pods',
      async () => (await revisionsOfPods('a')).every((r) => r === '2'),
      120_000,
    );
    const after = await publish(5);
    publishing = false;
    await publisher;
    const all = [...during, ...after];
    await waitFor(
      () => `every event published during the roll delivered (${received('a').length})`,
      () => all.every((id) => received('a').some((r) => r.id === id)),
      120_000,
    );
    // What was published after the roll ran revision 2.
    for (const id of after)
      expect(
        received('a')
          .filter((r) => r.id === id)
          .map((r) => r.rev),
      ).toContain('2');
  });

  it('a changed Secret rolls the pods of the instance that uses it, and only those', async () => {
    await waitFor(
      'b on revision 2',
      async () => (await read(ns.kc, 'FunctionInstance', ns.name, 'b'))?.status?.revision === 2,
      120_000,
    );
    await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'b',
      'Ready',
      'True',
      'Deployed',
      POD_TEST_TIMEOUT_MS,
    );
    const a = await podsOf('a');
    const b = await podsOf('b');
    await ns.kc.makeApiClient(CoreV1Api).replaceNamespacedSecret({
      name: 'token-b',
      namespace: ns.name,
      body: { metadata: { name: 'token-b' }, stringData: { token: 'token-b-2' } },
    });
    // New pods only, and no old one still terminating (it would finish its last pull with the old token).
    await waitFor(
      'b to have new pods only',
      async () => {
        const now = (await podList('b')).map((p) => p.metadata!.name!);
        return now.length > 0 && !now.some((p) => b.includes(p));
      },
      120_000,
    );
    await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'b',
      'Ready',
      'True',
      'Deployed',
      POD_TEST_TIMEOUT_MS,
    );
    const ids = await publish(3);
    await waitFor(
      'b to deliver with the new token',
      () =>
        ids.every((id) =>
          dest.requests.some(
            (r) => r.url === '/b' && r.json().id === id && r.headers.authorization === 'Bearer token-b-2',
          ),
        ),
      120_000,
    );
    expect(await podsOf('a')).toEqual(a);
  });

  it('deleting an instance stops its delivery: pods and consumer gone, later events not delivered to it', async () => {
    await remove(ns.kc, 'FunctionInstance', ns.name, 'b');
    await waitFor(
      'b to be gone',
      async () => !(await read(ns.kc, 'FunctionInstance', ns.name, 'b')),
      120_000,
    );
    await waitFor("b's pods to be gone", async () => (await podsOf('b')).length === 0, 120_000);
    const countB = received('b').length;
    const ids = await publish(5);
    // The other instance still receives them: proof they were published and delivered meanwhile.
    await waitFor(
      'a to deliver the later events',
      () => ids.every((id) => received('a').some((r) => r.id === id)),
      120_000,
    );
    expect(received('b').length).toBe(countB);
  });
});
