// Bad input becomes status, never a crash or a hot loop: each invalid function or instance gets the right
// condition, reason and a message naming the field, and nothing is deployed for it (no config, no
// Deployment, no consumer). Fixing the input is enough for it to run.

import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FunctionInstanceSpecInput } from '../../api/function-instance.js';
import { consumerName, topology } from '../../api/jetstream.js';
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

const ns = useNamespace('op-invalid');
let nats: NatsServer;
let operator: Operator;

const CODE = 'async function onTrack(event, settings) {}\n';
const SETTINGS = [
  { name: 'endpoint', type: 'string' as const, required: true },
  { name: 'retries', type: 'number' as const },
  { name: 'apiKey', type: 'string' as const, sensitive: true },
];
const WRITE_KEYS = 'write-keys';
const core = () => ns.kc.makeApiClient(CoreV1Api);

beforeAll(async () => {
  nats = await NatsServer.start();
  await core().createNamespacedSecret({
    namespace: ns.name,
    body: { metadata: { name: WRITE_KEYS }, stringData: { 'write-keys.yaml': 'wk1: web\n' } },
  });
  await core().createNamespacedSecret({
    namespace: ns.name,
    body: { metadata: { name: 'crm' }, stringData: { key: 'k-1' } },
  });
  operator = testOperator({
    kc: ns.kc,
    namespace: ns.name,
    natsUrl: nats.url,
    writeKeys: { namespace: ns.name, name: WRITE_KEYS, key: 'write-keys.yaml' },
  });
  await apply(ns.kc, destinationFunction(ns.name, 'crm', { code: CODE, settings: SETTINGS }));
  await waitForCondition(ns.kc, 'DestinationFunction', ns.name, 'crm', 'Ready', 'True');
}, 120_000);

afterAll(async () => {
  await operator?.stop();
  await nats?.dispose();
});

async function nothingDeployedFor(name: string): Promise<void> {
  const deployment = await ns.kc
    .makeApiClient(AppsV1Api)
    .readNamespacedDeployment({ name: `${name}-runner`, namespace: ns.name })
    .catch(() => undefined);
  const config = await core()
    .readNamespacedConfigMap({ name: `${name}-runner-config`, namespace: ns.name })
    .catch(() => undefined);
  const nc = await nats.connect();
  const consumer = await (await nc.jetstreamManager()).consumers
    .info(topology('dfn').eventsStream, consumerName({ namespace: ns.name, name }))
    .catch(() => undefined);
  await nc.close();
  expect({ deployment, config, consumer }).toEqual({
    deployment: undefined,
    config: undefined,
    consumer: undefined,
  });
}

const valid: FunctionInstanceSpecInput = {
  functionRef: { name: 'crm' },
  source: 'web',
  settings: { endpoint: 'https://crm.example' },
};

interface Case {
  name: string;
  spec: FunctionInstanceSpecInput;
  condition: string;
  reason: string;
  message: RegExp;
}

const CASES: Case[] = [
  {
    name: 'no-function',
    spec: { ...valid, functionRef: { name: 'nope' } },
    condition: 'Ready',
    reason: 'FunctionNotFound',
    message: /spec\.functionRef\.name: DestinationFunction "nope" not found/,
  },
  {
    name: 'no-revision',
    spec: { ...valid, functionRef: { name: 'crm', revision: 9 } },
    condition: 'Ready',
    reason: 'RevisionNotFound',
    message: /spec\.functionRef\.revision: .* has no revision 9 \(it has 1\)/,
  },
  {
    name: 'required-missing',
    spec: { ...valid, settings: {} },
    condition: 'SettingsValid',
    reason: 'InvalidSettings',
    message: /setting "endpoint" is required/,
  },
  {
    name: 'wrong-type',
    spec: { ...valid, settings: { endpoint: 'https://x', retries: 'three' } },
    condition: 'SettingsValid',
    reason: 'InvalidSettings',
    message: /setting "retries" must be a number, not a string/,
  },
  {
    name: 'sensitive-in-plain',
    spec: { ...valid, settings: { endpoint: 'https://x', apiKey: 'k-plain' } },
    condition: 'SettingsValid',
    reason: 'InvalidSettings',
    message: /spec\.settings\.apiKey: is sensitive: give it in spec\.secretSettings/,
  },
  {
    name: 'unknown-setting',
    spec: { ...valid, settings: { endpoint: 'https://x', endpont: 'typo' } },
    condition: 'SettingsValid',
    reason: 'InvalidSettings',
    message:
      /spec\.settings\.endpont: not a setting of the function \(its settings: endpoint, retries, apiKey\)/,
  },
  {
    name: 'both-plain-and-secret',
    spec: {
      ...valid,
      settings: { endpoint: 'https://x' },
      secretSettings: { endpoint: { secretKeyRef: { name: 'crm', key: 'key' } } },
    },
    condition: 'SettingsValid',
    reason: 'InvalidSettings',
    message: /spec\.secretSettings\.endpoint: setting "endpoint" is also in settings/,
  },
  {
    name: 'missing-secret',
    spec: { ...valid, secretSettings: { apiKey: { secretKeyRef: { name: 'absent', key: 'key' } } } },
    condition: 'SettingsValid',
    reason: 'SecretNotFound',
    message: /spec\.secretSettings\.apiKey\.secretKeyRef: Secret "absent" not found/,
  },
  {
    name: 'missing-key',
    spec: { ...valid, secretSettings: { apiKey: { secretKeyRef: { name: 'crm', key: 'other' } } } },
    condition: 'SettingsValid',
    reason: 'SecretNotFound',
    message: /Secret "crm" has no key "other"/,
  },
  {
    name: 'filter-value-type',
    spec: { ...valid, filters: { require: [{ field: 'properties.plan', op: 'in', value: 'pro' }] } },
    condition: 'Ready',
    reason: 'InvalidSpec',
    message: /spec\.filters\.require\[0\]\.value: op "in" needs a list/,
  },
  {
    name: 'types-not-handled',
    spec: { ...valid, filters: { eventTypes: ['identify', 'page'] } },
    condition: 'Ready',
    reason: 'InvalidSpec',
    message:
      /spec\.filters\.eventTypes: revision 1 of "crm" handles none of identify, page \(its handlers: onTrack\)/,
  },
  {
    name: 'unknown-source',
    spec: { ...valid, source: 'mobile' },
    condition: 'Ready',
    reason: 'SourceUnknown',
    message: /spec\.source: "mobile" is not a source of the gateway's write keys .*known sources: web/,
  },
  {
    name: 'private-network',
    spec: { ...valid, network: { allowPrivateNetwork: true } },
    condition: 'Ready',
    reason: 'PrivateNetworkNotAllowed',
    message: /spec\.network\.allowPrivateNetwork: private-network access is not allowed in namespace/,
  },
];

describe('an invalid FunctionInstance', () => {
  beforeAll(async () => {
    for (const c of CASES) await apply(ns.kc, functionInstance(ns.name, c.name, c.spec));
  });

  for (const c of CASES) {
    it(`${c.name}: ${c.condition}=False, reason ${c.reason}, nothing deployed`, async () => {
      const status = await waitForCondition(
        ns.kc,
        'FunctionInstance',
        ns.name,
        c.name,
        c.condition,
        'False',
        c.reason,
      );
      expect(condition(status, c.condition)!.message).toMatch(c.message);
      expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: c.reason });
      await nothingDeployedFor(c.name);
    });
  }

  it('runs once fixed: a source added to the write keys reaches its waiting instance', async () => {
    await core().replaceNamespacedSecret({
      name: WRITE_KEYS,
      namespace: ns.name,
      body: { metadata: { name: WRITE_KEYS }, stringData: { 'write-keys.yaml': 'wk1: web\nwk2: mobile\n' } },
    });
    const status = await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'unknown-source',
      'ConsumerReady',
      'True',
    );
    expect(condition(status, 'SettingsValid')).toMatchObject({ status: 'True' });
  });

  it('a missing Secret created later is picked up by its watch', async () => {
    await core().createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'absent' }, stringData: { key: 'v' } },
    });
    await waitForCondition(ns.kc, 'FunctionInstance', ns.name, 'missing-secret', 'SettingsValid', 'True');
  });
});

describe('an invalid DestinationFunction', () => {
  it('that does not parse: CodeValid=False, reason SyntaxError, line and column; no revision', async () => {
    await apply(
      ns.kc,
      destinationFunction(ns.name, 'broken', { code: 'async function onTrack(e) {\n\n  let = ;\n}' }),
    );
    const status = await waitForCondition(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'broken',
      'CodeValid',
      'False',
      'SyntaxError',
    );
    expect(condition(status, 'CodeValid')!.message).toMatch(/^3:\d+: SyntaxError: /);
    expect(status.latestRevision).toBeUndefined();
    const cms = await core().listNamespacedConfigMap({
      namespace: ns.name,
      labelSelector: 'dfn.dev/function=broken',
    });
    expect(cms.items).toEqual([]);
  });

  it("an instance of a function without a revision: FunctionNotReady, with the function's reason", async () => {
    await apply(ns.kc, functionInstance(ns.name, 'of-broken', { ...valid, functionRef: { name: 'broken' } }));
    const status = await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'of-broken',
      'Ready',
      'False',
      'FunctionNotReady',
    );
    expect(condition(status, 'Ready')!.message).toMatch(/has no valid revision yet: .*SyntaxError/);
    await nothingDeployedFor('of-broken');
  });

  it('that throws at its top level: CodeValid=False, reason LoadFailed', async () => {
    await apply(
      ns.kc,
      destinationFunction(ns.name, 'throws', {
        code: 'throw new Error("boom at load");\nasync function onTrack() {}',
      }),
    );
    const status = await waitForCondition(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'throws',
      'CodeValid',
      'False',
      'LoadFailed',
    );
    expect(condition(status, 'CodeValid')!.message).toContain('boom at load');
  });

  it('that defines no handler: CodeValid=False, reason NoHandlers', async () => {
    await apply(
      ns.kc,
      destinationFunction(ns.name, 'empty', { code: 'const x = 1;\nfunction helper() {}\n' }),
    );
    const status = await waitForCondition(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'empty',
      'CodeValid',
      'False',
      'NoHandlers',
    );
    expect(condition(status, 'CodeValid')!.message).toMatch(/defines no handler/);
  });

  it('with a default of the wrong type: Ready=False, reason InvalidSpec naming the field', async () => {
    await apply(
      ns.kc,
      destinationFunction(ns.name, 'bad-default', {
        code: CODE,
        settings: [{ name: 'n', type: 'number', default: 'five' }],
      }),
    );
    const status = await waitForCondition(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'bad-default',
      'Ready',
      'False',
      'InvalidSpec',
    );
    expect(condition(status, 'Ready')!.message).toMatch(/spec\.settings\[0\]\.default: must be a number/);
  });

  it('whose codeFrom ConfigMap is missing: CodeNotFound; the ConfigMap created later makes revision 1', async () => {
    await apply(
      ns.kc,
      destinationFunction(ns.name, 'from-cm', {
        codeFrom: { configMapKeyRef: { name: 'from-cm-code', key: 'function.js' } },
      }),
    );
    const status = await waitForCondition(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'from-cm',
      'CodeValid',
      'False',
      'CodeNotFound',
    );
    expect(condition(status, 'CodeValid')!.message).toBe('spec.codeFrom: ConfigMap "from-cm-code" not found');
    await core().createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'from-cm-code' }, data: { 'function.js': CODE } },
    });
    const ready = await waitForStatus(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'from-cm',
      'revision 1',
      (s) => s.latestRevision === 1,
    );
    expect(condition(ready, 'CodeValid')).toMatchObject({ status: 'True' });
  });
});

describe('no hot loop', () => {
  it('invalid objects are not reconciled over and over', async () => {
    const reconciles = async () =>
      (await operator.metrics.reconciles.get()).values.reduce((n, v) => n + v.value, 0);
    // Let everything above settle, then count: with nothing changing, reconciles stop.
    await waitFor(
      'the queue to drain',
      async () => {
        const before = await reconciles();
        await new Promise((r) => setTimeout(r, 1500));
        return (await reconciles()) === before;
      },
      30_000,
    );
  });
});
