// The CRDs as generated from api/: checked-in files current, structural, described throughout, and every
// zod refinement accounted for — mirrored in CEL or the schema, or left to the operator — and listed here.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import _ from 'lodash';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { crdFiles, customResourceDefinitions } from '../../api/crd/definitions.js';
import { type CrdKind, REFINEMENTS, refinementPaths, SPEC_SCHEMAS } from '../../api/crd/refinements.js';
import { type JSONSchemaProps, structuralSchema } from '../../api/crd/structural-schema.js';
import { FunctionInstanceSpecSchema } from '../../api/function-instance.js';
import {
  BatchingSchema,
  DataControlSchema,
  FiltersSchema,
  NetworkSchema,
  parseRunnerConfig,
  RetrySchema,
  RUNNER_CONFIG_API_VERSION,
  RUNNER_CONFIG_KIND,
} from '../../api/runner-config.js';
import { repoRoot } from '../helpers/dfn.js';

type Node = JSONSchemaProps & Record<string, unknown>;

function versionSchema(kind: CrdKind): Node {
  const crd = customResourceDefinitions().find((c) => (c.spec.names as { kind: string }).kind === kind)!;
  return (crd.spec.versions as { schema: { openAPIV3Schema: Node } }[])[0]!.schema.openAPIV3Schema;
}

/** Every schema node below `node`, with its path. */
function* nodes(node: Node, path: string): Generator<[string, Node]> {
  yield [path, node];
  for (const [k, v] of Object.entries(node.properties ?? {})) yield* nodes(v as Node, `${path}.${k}`);
  if (node.items) yield* nodes(node.items as Node, `${path}[]`);
  if (node.additionalProperties) yield* nodes(node.additionalProperties as Node, `${path}{}`);
}

describe('generated CRDs', () => {
  it.each(['crds', 'charts/dfn/crds'])('%s/ holds exactly what `npm run gen:crds` writes', (path) => {
    const dir = join(repoRoot, path);
    const expected = crdFiles();
    expect(readdirSync(dir).sort()).toEqual(expected.map((f) => f.name).sort());
    for (const file of expected) {
      expect(
        readFileSync(join(dir, file.name), 'utf8'),
        `${path}/${file.name} is stale: run npm run gen:crds`,
      ).toBe(file.content);
    }
  });

  it('names, short names, the dfn category, the status subresource and a FunctionInstance scale', () => {
    const names = customResourceDefinitions().map((c) => c.spec.names);
    expect(names).toEqual([
      expect.objectContaining({ kind: 'DestinationFunction', shortNames: ['destfn'], categories: ['dfn'] }),
      expect.objectContaining({ kind: 'FunctionInstance', shortNames: ['fi'], categories: ['dfn'] }),
    ]);
    for (const crd of customResourceDefinitions()) {
      const [version] = crd.spec.versions as { name: string; subresources: unknown }[];
      expect(crd.metadata.name.endsWith('.dfn.dev')).toBe(true);
      expect(version!.name).toBe('v1alpha1');
      expect(version!.subresources).toEqual(
        (crd.spec.names as { kind: string }).kind === 'FunctionInstance'
          ? {
              status: {},
              scale: {
                specReplicasPath: '.spec.replicas',
                statusReplicasPath: '.status.replicas',
                labelSelectorPath: '.status.selector',
              },
            }
          : { status: {} },
      );
    }
  });

  it.each(['DestinationFunction', 'FunctionInstance'] as const)(
    '%s: every field has a description',
    (kind) => {
      const undescribed = [...nodes(versionSchema(kind), '')]
        .filter(([path]) => /\.[^.[\]{}]+$/.test(path) && path !== '.metadata')
        .filter(([, n]) => !n.description)
        .map(([p]) => p);
      expect(undescribed).toEqual([]);
    },
  );

  it.each(['DestinationFunction', 'FunctionInstance'] as const)(
    '%s: structural (typed nodes, no zod defaults, no additionalProperties beside properties)',
    (kind) => {
      const problems: string[] = [];
      for (const [path, n] of nodes(versionSchema(kind), '')) {
        const typed = n.type || n['x-kubernetes-preserve-unknown-fields'] || n['x-kubernetes-int-or-string'];
        if (!typed) problems.push(`${path}: no type`);
        if ('default' in n) problems.push(`${path}: a default frozen into the CRD`);
        if (n.properties && n.additionalProperties)
          problems.push(`${path}: properties and additionalProperties`);
      }
      expect(problems).toEqual([]);
    },
  );

  it('free-form values keep what the user wrote (x-kubernetes-preserve-unknown-fields)', () => {
    const df = versionSchema('DestinationFunction').properties!.spec!;
    const fi = versionSchema('FunctionInstance').properties!.spec!;
    expect(df.properties!.settings!.items!.properties!.default).toMatchObject({
      'x-kubernetes-preserve-unknown-fields': true,
    });
    expect(fi.properties!.settings!.additionalProperties).toEqual({
      'x-kubernetes-preserve-unknown-fields': true,
    });
    expect(fi.properties!.filters!.properties!.require!.items!.properties!.value).toMatchObject({
      'x-kubernetes-preserve-unknown-fields': true,
    });
  });

  it("a FunctionInstance's delivery parts are the runner config's own schemas", () => {
    const fi = versionSchema('FunctionInstance').properties!.spec!.properties!;
    const parts = {
      filters: FiltersSchema,
      dataControl: DataControlSchema,
      batching: BatchingSchema,
      retry: RetrySchema,
      network: NetworkSchema,
    };
    for (const [field, schema] of Object.entries(parts)) {
      expect(withoutCel(fi[field]!), field).toEqual(withoutCel(structuralSchema(schema)));
    }
    expect(Object.keys(fi.limits!.properties!).sort()).toEqual(
      [
        'cacheBytes',
        'cacheEntries',
        'concurrency',
        'fetchMaxResponseBytes',
        'fetchTimeoutMs',
        'logBytes',
      ].sort(),
    );
    const df = versionSchema('DestinationFunction').properties!.spec!.properties!;
    expect(Object.keys(df.limits!.properties!)).toEqual(['timeoutMs', 'memoryMb']);
  });

  it('what the example FunctionInstance says, the runner config accepts as it is', () => {
    const docs = parseAllDocuments(readFileSync(join(repoRoot, 'examples/kubernetes/orders.yaml'), 'utf8'));
    const fi = docs.map((d) => d.toJS()).find((d) => d.kind === 'FunctionInstance');
    const spec = FunctionInstanceSpecSchema.parse(fi.spec);
    const config = parseRunnerConfig({
      apiVersion: RUNNER_CONFIG_API_VERSION,
      kind: RUNNER_CONFIG_KIND,
      instance: { namespace: 'default', name: fi.metadata.name, source: spec.source },
      function: { revision: '1' },
      ..._.pick(spec, ['filters', 'dataControl', 'batching', 'retry', 'network', 'consumer', 'limits']),
    });
    expect(config.batching).toEqual({ enabled: true, maxSize: 100, maxWaitMs: 2000 });
    expect(config.filters.require).toEqual([{ field: 'properties.total', op: 'gt', value: 0 }]);
  });
});

/** A schema without its CEL rules (the CRD adds them where the runner config's zod refines). */
function withoutCel(node: JSONSchemaProps): JSONSchemaProps {
  return JSON.parse(JSON.stringify(node, (k, v) => (k === 'x-kubernetes-validations' ? undefined : v)));
}

describe('zod refinements: each mirrored in CEL or the schema, or checked by the operator', () => {
  it.each(['DestinationFunction', 'FunctionInstance'] as const)(
    '%s: every refinement in the zod schema is in the list, and nothing else is',
    (kind) => {
      const inSchema = [...new Set(refinementPaths(SPEC_SCHEMAS[kind], 'spec'))].sort();
      const listed = REFINEMENTS.filter((r) => r.kind === kind)
        .map((r) => r.path)
        .sort();
      expect(listed).toEqual(inSchema);
    },
  );

  it('the list: which check is enforced by the API server (CEL, schema) and which by the operator', () => {
    const table = REFINEMENTS.flatMap((r) =>
      r.checks.map((c) => `${r.kind} ${r.path}: ${c.what} → ${c.mirror.by}`),
    );
    expect(table).toEqual([
      'DestinationFunction spec: exactly one of code and codeFrom → cel',
      'DestinationFunction spec.settings: each setting name once → schema',
      'DestinationFunction spec.settings[]: a sensitive setting has no default → cel',
      "DestinationFunction spec.settings[]: a default has the setting's type → operator",
      'FunctionInstance spec: with batching enabled, limits.concurrency is at least batching.maxSize → cel',
      'FunctionInstance spec: a setting is in settings or in secretSettings, not both → operator',
      'FunctionInstance spec.filters.require[]: value is required by every op but exists/notExists, which take none → cel',
      'FunctionInstance spec.filters.require[]: in/notIn need a list, gt/gte/lt/lte a number, startsWith/endsWith/matches a string → operator',
      'FunctionInstance spec.filters.require[]: matches needs a valid JavaScript regular expression → operator',
      'FunctionInstance spec.filters.exclude[]: value is required by every op but exists/notExists, which take none → cel',
      'FunctionInstance spec.filters.exclude[]: in/notIn need a list, gt/gte/lt/lte a number, startsWith/endsWith/matches a string → operator',
      'FunctionInstance spec.filters.exclude[]: matches needs a valid JavaScript regular expression → operator',
    ]);
    for (const r of REFINEMENTS) {
      for (const c of r.checks) {
        if (c.mirror.by === 'operator')
          expect(c.mirror.why.length, `${r.path}: ${c.what}`).toBeGreaterThan(20);
      }
    }
  });

  it('each CEL rule and schema extension sits on the node of its refinement in the generated CRD', () => {
    for (const r of REFINEMENTS) {
      const [, node] = [...nodes(versionSchema(r.kind), '')].find(([p]) => p === `.${r.path}`)!;
      for (const { mirror } of r.checks) {
        if (mirror.by === 'cel') expect(node['x-kubernetes-validations']).toContainEqual(mirror.rule);
        if (mirror.by === 'schema') expect(node).toMatchObject(mirror.extension);
      }
    }
  });
});
