// The CRDs on a real API server, driven with kubectl as a user would: the examples apply, `kubectl explain`
// teaches the API, what the API server can judge alone it refuses with a reason (and zod agrees), columns.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DestinationFunctionSpecSchema } from '../../api/destination-function.js';
import { FunctionInstanceSpecSchema } from '../../api/function-instance.js';
import { API_GROUP, API_VERSION } from '../../api/kube-types.js';
import { SettingDefinitionSchema } from '../../api/settings.js';
import { repoRoot } from '../helpers/dfn.js';
import { kubectl, useNamespace } from '../helpers/kube.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('crds');

const df = (name: string, spec: unknown) =>
  stringify({
    apiVersion: `${API_GROUP}/${API_VERSION}`,
    kind: 'DestinationFunction',
    metadata: { name },
    spec,
  });
const fi = (name: string, spec: Record<string, unknown>) =>
  stringify({
    apiVersion: `${API_GROUP}/${API_VERSION}`,
    kind: 'FunctionInstance',
    metadata: { name },
    spec: { functionRef: { name: 'orders' }, source: 'web', ...spec },
  });
const CODE = 'async function onTrack(event, settings) {}';

const apply = (manifest: string) => kubectl(['apply', '-f', '-'], { input: manifest, namespace: ns.name });

/** The spec of a one-document manifest, for zod. */
const specOf = (manifest: string) => (parse(manifest) as { spec: unknown }).spec;

describe('the dfn.dev API on a real API server', () => {
  it('kubectl apply of the example manifests succeeds', async () => {
    for (const path of ['examples/webhook', 'examples/kubernetes/orders.yaml']) {
      const run = await kubectl(['apply', '-f', join(repoRoot, path)], {
        namespace: ns.name,
      });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
    }
    const run = await kubectl(['get', 'destfn,fi', '-o', 'name'], { namespace: ns.name });
    expect(run.stdout.split('\n').filter(Boolean).sort()).toEqual([
      'destinationfunction.dfn.dev/orders',
      'destinationfunction.dfn.dev/webhook',
      'functioninstance.dfn.dev/orders-backend',
      'functioninstance.dfn.dev/webhook-web',
    ]);
    // What the API server stored is what was written: no defaults were added (the operator applies them).
    const stored = JSON.parse(
      (await kubectl(['get', 'fi', 'webhook-web', '-o', 'json'], { namespace: ns.name })).stdout,
    );
    expect(stored.spec.retry).toEqual({ maxAttempts: 5 });
    expect(stored.spec.replicas).toBeUndefined();
  });

  it('kubectl explain destinationfunction.spec.settings prints the descriptions of every field', async () => {
    const run = await kubectl(['explain', 'destinationfunction.spec.settings']);
    expect(run.code).toBe(0);
    const text = run.stdout.replace(/\s+/g, ' ');
    for (const [field, schema] of Object.entries(SettingDefinitionSchema.shape)) {
      expect(text).toContain(`${field} <`);
      expect(text).toContain(schema.description!.replace(/\s+/g, ' '));
    }
  });

  it('kubectl explain reaches into the runner-config parts of a FunctionInstance', async () => {
    const run = await kubectl(['explain', 'fi.spec.retry.maxAttempts']);
    expect(run.code).toBe(0);
    expect(run.stdout.replace(/\s+/g, ' ')).toContain('Delivery attempts per event, the first included');
  });

  // Manifests the API server can judge alone: refused, saying why; and the zod schema refuses them too.
  const refused: { what: string; manifest: string; says: RegExp; schema: 'df' | 'fi' }[] = [
    {
      what: 'both code and codeFrom',
      manifest: df('both', { code: CODE, codeFrom: { configMapKeyRef: { name: 'c', key: 'k' } } }),
      says: /exactly one of spec.code and spec.codeFrom must be set/,
      schema: 'df',
    },
    {
      what: 'neither code nor codeFrom',
      manifest: df('neither', { settings: [] }),
      says: /exactly one of spec.code and spec.codeFrom must be set/,
      schema: 'df',
    },
    {
      what: 'a setting name that is not a JavaScript identifier',
      manifest: df('badname', { code: CODE, settings: [{ name: 'api-key', type: 'string' }] }),
      says: /spec.settings\[0\].name: Invalid value: "api-key": .*should match/,
      schema: 'df',
    },
    {
      what: 'a default on a sensitive setting',
      manifest: df('sensitive', {
        code: CODE,
        settings: [{ name: 'apiKey', type: 'string', sensitive: true, default: 'sk_live_123' }],
      }),
      says: /spec.settings\[0\].default: Invalid value: .*a sensitive setting cannot have a default/,
      schema: 'df',
    },
    {
      what: 'a setting type that does not exist',
      manifest: df('badtype', { code: CODE, settings: [{ name: 'color', type: 'colour' }] }),
      says: /spec.settings\[0\].type: Unsupported value: "colour": supported values: "string", "number", "boolean", "array", "map"/,
      schema: 'df',
    },
    {
      what: 'a setting declared twice',
      manifest: df('twice', {
        code: CODE,
        settings: [
          { name: 'url', type: 'string' },
          { name: 'url', type: 'number' },
        ],
      }),
      says: /spec.settings\[1\]: Duplicate value: \{"name":"url"\}/,
      schema: 'df',
    },
    {
      what: 'a negative limit',
      manifest: df('negative', { code: CODE, limits: { timeoutMs: -5 } }),
      says: /spec.limits.timeoutMs: Invalid value: -5: spec.limits.timeoutMs in body should be greater than or equal to 1/,
      schema: 'df',
    },
    {
      what: 'a field of the wrong type',
      manifest: fi('wrongtype', { replicas: 'two' }),
      says: /spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer/,
      schema: 'fi',
    },
    {
      what: 'a negative replica count',
      manifest: fi('negreplicas', { replicas: -1 }),
      says: /spec.replicas in body should be greater than or equal to 0/,
      schema: 'fi',
    },
    {
      what: 'a misspelt field',
      manifest: fi('typo', { retries: { maxAttempts: 3 } }),
      says: /unknown field "spec.retries"/,
      schema: 'fi',
    },
    {
      what: 'a filter condition without the value its op needs',
      manifest: fi('novalue', { filters: { require: [{ field: 'properties.total', op: 'gt' }] } }),
      says: /spec.filters.require\[0\].value: Invalid value: .*value is required by every op except exists and notExists/,
      schema: 'fi',
    },
    {
      what: 'a value on an exists condition',
      manifest: fi('extravalue', { filters: { exclude: [{ field: 'userId', op: 'exists', value: true }] } }),
      says: /spec.filters.exclude\[0\].value: Invalid value: .*which take none/,
      schema: 'fi',
    },
    {
      what: 'batches larger than the replica may hold',
      manifest: fi('batchfit', { batching: { enabled: true, maxSize: 300 }, limits: { concurrency: 100 } }),
      says: /spec.limits.concurrency: Invalid value: .*limits.concurrency must be at least batching.maxSize/,
      schema: 'fi',
    },
    {
      what: 'batching enabled with the default concurrency (200) below the batch size',
      manifest: fi('batchdefault', { batching: { enabled: true, maxSize: 250 } }),
      says: /limits.concurrency must be at least batching.maxSize/,
      schema: 'fi',
    },
    {
      what: 'a sensitive setting name that is not an identifier',
      manifest: fi('secretkey', { secretSettings: { 'api-key': { secretKeyRef: { name: 's', key: 'k' } } } }),
      says: /spec.secretSettings: Invalid value: .*keys must match/,
      schema: 'fi',
    },
    {
      what: 'a pinned revision below 1',
      manifest: fi('revision0', { functionRef: { name: 'orders', revision: 0 } }),
      says: /spec.functionRef.revision in body should be greater than or equal to 1/,
      schema: 'fi',
    },
  ];

  it.each(refused)(
    'refuses $what, saying why (and so does the zod schema)',
    async ({ manifest, says, schema }) => {
      const run = await apply(manifest);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(says);
      const zod = schema === 'df' ? DestinationFunctionSpecSchema : FunctionInstanceSpecSchema;
      expect(zod.safeParse(specOf(manifest)).success).toBe(false);
    },
  );

  // What the API server cannot judge: accepted, and caught by the zod schema the operator parses with.
  const operatorChecked: { what: string; manifest: string; zodSays: RegExp; schema: 'df' | 'fi' }[] = [
    {
      what: "a default of another type than the setting's",
      manifest: df('defaulttype', {
        code: CODE,
        settings: [{ name: 'retries', type: 'number', default: 'three' }],
      }),
      zodSays: /must be a number, like the setting \(got a string\)/,
      schema: 'df',
    },
    {
      what: 'a filter value of the wrong type for its op',
      manifest: fi('valuetype', {
        filters: { require: [{ field: 'properties.total', op: 'gt', value: 'ten' }] },
      }),
      zodSays: /op "gt" needs a number \(got string\)/,
      schema: 'fi',
    },
    {
      what: 'a filter regular expression JavaScript cannot compile',
      manifest: fi('badregex', {
        filters: { require: [{ field: 'event', op: 'matches', value: '(unclosed' }] },
      }),
      zodSays: /not a valid regular expression/,
      schema: 'fi',
    },
    {
      what: 'a setting both plain and sensitive',
      manifest: fi('bothsettings', {
        settings: { apiKey: 'plain' },
        secretSettings: { apiKey: { secretKeyRef: { name: 's', key: 'k' } } },
      }),
      zodSays: /setting "apiKey" is also in settings/,
      schema: 'fi',
    },
  ];

  it.each(operatorChecked)(
    'accepts $what, which the operator reports',
    async ({ manifest, zodSays, schema }) => {
      const run = await apply(manifest);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const zod = schema === 'df' ? DestinationFunctionSpecSchema : FunctionInstanceSpecSchema;
      const result = zod.safeParse(specOf(manifest));
      expect(result.success).toBe(false);
      expect(result.error!.issues.map((i) => i.message).join('\n')).toMatch(zodSays);
    },
  );

  it('kubectl get destfn,fi prints the status columns; kubectl get dfn lists both kinds', async () => {
    await kubectl(['apply', '-f', join(repoRoot, 'examples/kubernetes/orders.yaml')], { namespace: ns.name });
    const api = ns.kc.makeApiClient(CustomObjectsApi);
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const ready = {
      type: 'Ready',
      status: 'True',
      reason: 'Delivering',
      message: 'ok',
      lastTransitionTime: new Date().toISOString(),
    };
    await api.patchNamespacedCustomObjectStatus(
      {
        group: API_GROUP,
        version: API_VERSION,
        namespace: ns.name,
        plural: 'destinationfunctions',
        name: 'orders',
        body: {
          status: {
            latestRevision: 3,
            handlers: ['onTrack', 'onBatch'],
            instances: 1,
            delivered: 42,
            failed: 2,
            conditions: [ready],
          },
        },
      },
      merge,
    );
    await api.patchNamespacedCustomObjectStatus(
      {
        group: API_GROUP,
        version: API_VERSION,
        namespace: ns.name,
        plural: 'functioninstances',
        name: 'orders-backend',
        body: {
          status: {
            revision: 1,
            delivered: 40,
            retrying: 5,
            failed: 2,
            lastError: {
              type: 'Timeout',
              message: 'took longer than 5000 ms',
              time: new Date().toISOString(),
            },
            conditions: [ready],
          },
        },
      },
      merge,
    );
    const functions = await kubectl(['get', 'destfn', 'orders'], { namespace: ns.name });
    const [header, row] = functions.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s{2,}/));
    expect(header).toEqual([
      'NAME',
      'READY',
      'REVISION',
      'HANDLERS',
      'INSTANCES',
      'DELIVERED',
      'FAILED',
      'AGE',
    ]);
    expect(row!.slice(0, 7)).toEqual(['orders', 'True', '3', '["onTrack","onBatch"]', '1', '42', '2']);

    const instances = await kubectl(['get', 'fi', 'orders-backend'], { namespace: ns.name });
    const [fiHeader, fiRow] = instances.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s{2,}/));
    expect(fiHeader).toEqual([
      'NAME',
      'FUNCTION',
      'REVISION',
      'READY',
      'DELIVERED',
      'RETRYING',
      'FAILED',
      'LAST ERROR',
      'AGE',
    ]);
    expect(fiRow!.slice(0, 8)).toEqual(['orders-backend', 'orders', '1', 'True', '40', '5', '2', 'Timeout']);

    const both = await kubectl(['get', 'dfn', '-o', 'name'], { namespace: ns.name });
    expect(both.stdout).toContain('destinationfunction.dfn.dev/orders');
    expect(both.stdout).toContain('functioninstance.dfn.dev/orders-backend');
  });

  it('status is a subresource: a status write leaves spec and generation alone, a spec edit bumps generation', async () => {
    await apply(df('gen', { code: CODE }));
    const api = ns.kc.makeApiClient(CustomObjectsApi);
    const get = () =>
      api.getNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        namespace: ns.name,
        plural: 'destinationfunctions',
        name: 'gen',
      });
    const before = await get();
    await api.patchNamespacedCustomObjectStatus(
      {
        group: API_GROUP,
        version: API_VERSION,
        namespace: ns.name,
        plural: 'destinationfunctions',
        name: 'gen',
        // A spec change smuggled into a status write is ignored.
        body: { spec: { code: 'changed' }, status: { observedGeneration: before.metadata.generation } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const afterStatus = await get();
    expect(afterStatus.spec.code).toBe(CODE);
    expect(afterStatus.metadata.generation).toBe(before.metadata.generation);
    expect(afterStatus.status.observedGeneration).toBe(before.metadata.generation);
    await apply(df('gen', { code: `${CODE}\n// edited` }));
    expect((await get()).metadata.generation).toBe(before.metadata.generation + 1);
  });

  it('a FunctionInstance scales through its scale subresource (kubectl scale, HPA, KEDA), not its Deployment', async () => {
    await apply(fi('scaled', { replicas: 1 }));
    const scale = await kubectl(['scale', 'fi', 'scaled', '--replicas=3'], { namespace: ns.name });
    expect(scale.stderr).toBe('');
    const stored = JSON.parse(
      (await kubectl(['get', 'fi', 'scaled', '-o', 'json'], { namespace: ns.name })).stdout,
    );
    expect(stored.spec.replicas).toBe(3);
    // What an autoscaler reads: the operator writes the running replicas and the Pods' selector into status.
    const api = ns.kc.makeApiClient(CustomObjectsApi);
    await api.patchNamespacedCustomObjectStatus(
      {
        group: API_GROUP,
        version: API_VERSION,
        namespace: ns.name,
        plural: 'functioninstances',
        name: 'scaled',
        body: { status: { replicas: 2, selector: 'dfn.dev/instance=scaled', backlog: 1200 } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const raw = await kubectl(
      [
        'get',
        '--raw',
        `/apis/${API_GROUP}/${API_VERSION}/namespaces/${ns.name}/functioninstances/scaled/scale`,
      ],
      { namespace: ns.name },
    );
    expect(JSON.parse(raw.stdout)).toMatchObject({
      kind: 'Scale',
      spec: { replicas: 3 },
      status: { replicas: 2, selector: 'dfn.dev/instance=scaled' },
    });
    const wide = await kubectl(['get', 'fi', 'scaled', '-o', 'wide'], { namespace: ns.name });
    expect(wide.stdout.split('\n')[0]).toMatch(/BACKLOG\s+HEALTHY/);
    expect(wide.stdout).toMatch(/\b1200\b/);
  });

  it('what a DestinationFunction owns is garbage-collected with it (our kinds are known to the collector)', async () => {
    await apply(df('owner', { code: CODE }));
    const owner = JSON.parse(
      (await kubectl(['get', 'destfn', 'owner', '-o', 'json'], { namespace: ns.name })).stdout,
    );
    const core = ns.kc.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: {
        metadata: {
          name: 'owner-rev-1',
          ownerReferences: [
            {
              apiVersion: `${API_GROUP}/${API_VERSION}`,
              kind: 'DestinationFunction',
              name: 'owner',
              uid: owner.metadata.uid,
            },
          ],
        },
        data: { 'function.js': CODE },
      },
    });
    expect((await kubectl(['delete', 'destfn', 'owner'], { namespace: ns.name })).code).toBe(0);
    await waitFor('the owned ConfigMap to be collected', () =>
      core.readNamespacedConfigMap({ name: 'owner-rev-1', namespace: ns.name }).then(
        () => false,
        (err) => err.code === 404,
      ),
    );
  });

  it('the checked-in CRD files are what the API server serves', async () => {
    const served = JSON.parse(
      (await kubectl(['get', 'crd', 'functioninstances.dfn.dev', '-o', 'json'])).stdout,
    );
    const file = parse(readFileSync(join(repoRoot, 'crds/functioninstances.dfn.dev.yaml'), 'utf8'));
    expect(served.spec.versions[0].schema).toEqual(file.spec.versions[0].schema);
    expect(served.status.conditions).toContainEqual(
      expect.objectContaining({ type: 'Established', status: 'True' }),
    );
  });
});
