// Changes roll exactly what they should: new code becomes the next revision, which instances following
// the latest roll to and pinned ones do not; a broken edit becomes no revision; a changed Secret changes the
// pods of the instances that use it and no others; suspend scales to zero.

import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operator } from '../../operator/index.js';
import { useNamespace } from '../helpers/kube.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  apply,
  condition,
  destinationFunction,
  functionInstance,
  testOperator,
  waitForCondition,
  waitForStatus,
} from '../helpers/operator.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('op-changes');
let nats: NatsServer;
let operator: Operator;

const code = (n: number) => `async function onTrack(event, settings) { return ${n}; }\n`;
const SETTINGS = [{ name: 'token', type: 'string' as const, sensitive: true, required: true }];

beforeAll(async () => {
  nats = await NatsServer.start();
  operator = testOperator({ kc: ns.kc, namespace: ns.name, natsUrl: nats.url });
  const core = ns.kc.makeApiClient(CoreV1Api);
  for (const [name, value] of [
    ['token-a', 'a-1'],
    ['token-b', 'b-1'],
  ] as const) {
    await core.createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name }, stringData: { v: value } },
    });
  }
  await apply(ns.kc, destinationFunction(ns.name, 'fn', { code: code(1), settings: SETTINGS }));
  const instance = (name: string, secret: string, revision?: number) =>
    functionInstance(ns.name, name, {
      functionRef: { name: 'fn', ...(revision ? { revision } : {}) },
      source: 'web',
      secretSettings: { token: { secretKeyRef: { name: secret, key: 'v' } } },
    });
  await apply(ns.kc, instance('latest', 'token-a'));
  await apply(ns.kc, instance('pinned', 'token-b', 1));
  for (const name of ['latest', 'pinned']) {
    await waitForStatus(ns.kc, 'FunctionInstance', ns.name, name, 'revision 1', (s) => s.revision === 1);
  }
}, 120_000);

afterAll(async () => {
  await operator?.stop();
  await nats?.dispose();
});

const apps = () => ns.kc.makeApiClient(AppsV1Api);
const template = async (instance: string) =>
  (await apps().readNamespacedDeployment({ name: `${instance}-runner`, namespace: ns.name })).spec!.template;
const checksum = async (instance: string) =>
  (await template(instance)).metadata!.annotations!['dfn.dev/config-checksum'];
const codeConfigMap = async (instance: string) =>
  (await template(instance)).spec!.volumes![0]!.projected!.sources![1]!.configMap!.name;

describe('a code change', () => {
  it('becomes revision 2; the instance following the latest rolls to it, the pinned one stays on 1', async () => {
    const pinnedBefore = await checksum('pinned');
    await apply(ns.kc, destinationFunction(ns.name, 'fn', { code: code(2), settings: SETTINGS }));
    await waitForStatus(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'fn',
      'revision 2',
      (s) => s.latestRevision === 2,
    );
    await waitForStatus(ns.kc, 'FunctionInstance', ns.name, 'latest', 'revision 2', (s) => s.revision === 2);
    await waitFor(
      'the latest instance to mount revision 2',
      async () => (await codeConfigMap('latest')) === 'fn-r2',
    );
    expect((await template('latest')).metadata!.annotations!['dfn.dev/revision']).toBe('2');
    const pinned = await waitForStatus(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'pinned',
      'observed',
      (s) => s.revision === 1,
    );
    expect(pinned.revision).toBe(1);
    expect(await codeConfigMap('pinned')).toBe('fn-r1');
    expect(await checksum('pinned')).toBe(pinnedBefore);
  });

  it('that does not parse becomes no revision: CodeValid=False with line and column, instances keep running', async () => {
    await apply(
      ns.kc,
      destinationFunction(ns.name, 'fn', {
        code: 'async function onTrack(e) {\n  return e +;\n}\n',
        settings: SETTINGS,
      }),
    );
    const status = await waitForCondition(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'fn',
      'CodeValid',
      'False',
      'SyntaxError',
    );
    expect(condition(status, 'CodeValid')!.message).toMatch(/^2:\d+: SyntaxError/);
    expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: 'SyntaxError' });
    expect(condition(status, 'Ready')!.message).toContain('instances keep running revision 2');
    expect(status.latestRevision).toBe(2);
    const latest = await waitForStatus(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'latest',
      'still revision 2',
      (s) => s.revision === 2,
    );
    expect(latest.revision).toBe(2);
    expect(await codeConfigMap('latest')).toBe('fn-r2');
  });

  it('back to valid code is the next revision, numbered after every other', async () => {
    await apply(ns.kc, destinationFunction(ns.name, 'fn', { code: code(1), settings: SETTINGS }));
    const status = await waitForStatus(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'fn',
      'revision 3',
      (s) => s.latestRevision === 3,
    );
    expect(condition(status, 'Ready')).toMatchObject({ status: 'True', reason: 'RevisionReady' });
  });
});

describe('a Secret change', () => {
  it('rolls exactly the instances that use it', async () => {
    await waitFor(
      'the latest instance on revision 3',
      async () => (await codeConfigMap('latest')) === 'fn-r3',
    );
    const before = { latest: await checksum('latest'), pinned: await checksum('pinned') };
    await ns.kc.makeApiClient(CoreV1Api).replaceNamespacedSecret({
      name: 'token-a',
      namespace: ns.name,
      body: { metadata: { name: 'token-a' }, stringData: { v: 'a-2' } },
    });
    await waitFor('the pods of "latest" to roll', async () => (await checksum('latest')) !== before.latest);
    // Reconciled again after the change (a spec edit that is not in the checksum: replicas), the other
    // instance's pods stayed as they were.
    await apply(
      ns.kc,
      functionInstance(ns.name, 'pinned', {
        functionRef: { name: 'fn', revision: 1 },
        source: 'web',
        secretSettings: { token: { secretKeyRef: { name: 'token-b', key: 'v' } } },
        replicas: 2,
      }),
    );
    await waitFor(
      'pinned to have 2 replicas',
      async () =>
        (await apps().readNamespacedDeployment({ name: 'pinned-runner', namespace: ns.name })).spec
          ?.replicas === 2,
    );
    expect(await checksum('pinned')).toBe(before.pinned);
  });
});

describe('suspend', () => {
  it('scales the runners to zero and is Ready with reason Suspended', async () => {
    await apply(
      ns.kc,
      functionInstance(ns.name, 'pinned', {
        functionRef: { name: 'fn', revision: 1 },
        source: 'web',
        secretSettings: { token: { secretKeyRef: { name: 'token-b', key: 'v' } } },
        suspend: true,
      }),
    );
    const status = await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'pinned',
      'Ready',
      'True',
      'Suspended',
    );
    expect(condition(status, 'RunnerReady')).toMatchObject({ status: 'True' });
    const d = await apps().readNamespacedDeployment({ name: 'pinned-runner', namespace: ns.name });
    expect(d.spec?.replicas).toBe(0);
  });
});
