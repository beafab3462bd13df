// The CustomResourceDefinitions of dfn.dev, built from the zod schemas of api/ with their refinements'
// mirrors (refinements.ts). scripts/gen-crds.ts writes them to crds/; a test keeps those files current.

import { stringify } from 'yaml';
import type { z } from 'zod';
import {
  DESTINATION_FUNCTION_KIND,
  DestinationFunctionSpecSchema,
  DestinationFunctionStatusSchema,
} from '../destination-function.js';
import {
  FUNCTION_INSTANCE_KIND,
  FunctionInstanceSpecSchema,
  FunctionInstanceStatusSchema,
} from '../function-instance.js';
import { API_GROUP, API_VERSION } from '../kube-types.js';
import { type CrdKind, REFINEMENTS } from './refinements.js';
import { type JSONSchemaProps, SchemaConversionError, structuralSchema } from './structural-schema.js';

export const DFN_CATEGORY = 'dfn';

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
}

interface ResourceDefinition {
  kind: CrdKind;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  columns: PrinterColumn[];
  /** The scale subresource (kubectl scale, HorizontalPodAutoscaler, KEDA), when the kind has one. */
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
}

const READY: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: 'The Ready condition.',
};
const AGE: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since creation.',
};
const counter = (name: string, field: string, description: string): PrinterColumn => ({
  name,
  type: 'integer',
  jsonPath: `.status.${field}`,
  description,
});

export const RESOURCES: readonly ResourceDefinition[] = [
  {
    kind: DESTINATION_FUNCTION_KIND,
    plural: 'destinationfunctions',
    singular: 'destinationfunction',
    shortNames: ['destfn'],
    description:
      'A destination function, as in Segment: JavaScript handlers (onTrack, onIdentify, …, onBatch) that ' +
      'receive analytics events and send them on, with a settings schema. FunctionInstances run it.',
    spec: DestinationFunctionSpecSchema,
    status: DestinationFunctionStatusSchema,
    columns: [
      READY,
      counter('Revision', 'latestRevision', 'Latest revision of code and settings schema.'),
      {
        name: 'Handlers',
        type: 'string',
        jsonPath: '.status.handlers',
        description: 'Handlers the code defines.',
      },
      counter('Instances', 'instances', 'FunctionInstances running it.'),
      counter('Delivered', 'delivered', 'Events delivered, over all instances.'),
      counter('Failed', 'failed', 'Events that failed for good, over all instances.'),
      AGE,
    ],
  },
  {
    kind: FUNCTION_INSTANCE_KIND,
    plural: 'functioninstances',
    singular: 'functioninstance',
    shortNames: ['fi'],
    description:
      "One deployment of a DestinationFunction: the source whose events it receives, the function's " +
      'settings, and how events are filtered, batched and retried. The operator runs it as runner Pods.',
    spec: FunctionInstanceSpecSchema,
    status: FunctionInstanceStatusSchema,
    columns: [
      {
        name: 'Function',
        type: 'string',
        jsonPath: '.spec.functionRef.name',
        description: 'The DestinationFunction it runs.',
      },
      counter('Revision', 'revision', 'The function revision running.'),
      READY,
      counter('Delivered', 'delivered', 'Events delivered.'),
      counter('Retrying', 'retrying', 'Events waiting for their next attempt.'),
      counter('Failed', 'failed', 'Events that failed for good (discarded or dead-lettered).'),
      {
        name: 'Last Error',
        type: 'string',
        jsonPath: '.status.lastError.type',
        description: 'Latest error type.',
      },
      { ...counter('Backlog', 'backlog', 'Events waiting in the consumer.'), priority: 1 },
      {
        name: 'Healthy',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="Healthy")].status',
        description: 'The Healthy condition: whether recent delivery attempts succeed.',
        priority: 1,
      },
      AGE,
    ],
    // Autoscalers scale the instance, not its Deployment, which the operator would scale back.
    scale: {
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.selector',
    },
  },
];

/** The node at a Refinement path below `spec`. */
function nodeAt(root: JSONSchemaProps, path: string): JSONSchemaProps {
  let node: JSONSchemaProps | undefined = root;
  for (const step of path.replace(/^spec\.?/, '').match(/[^.[\]{}]+|\[\]|\{\}/g) ?? []) {
    node =
      step === '[]' ? node?.items : step === '{}' ? node?.additionalProperties : node?.properties?.[step];
    if (!node) throw new SchemaConversionError(path, 'refinement path not in the schema');
  }
  return node;
}

function specSchema(resource: ResourceDefinition): JSONSchemaProps {
  const spec = structuralSchema(resource.spec, 'input');
  for (const refinement of REFINEMENTS.filter((r) => r.kind === resource.kind)) {
    const node = nodeAt(spec, refinement.path);
    for (const { mirror } of refinement.checks) {
      if (mirror.by === 'cel') {
        node['x-kubernetes-validations'] = [...(node['x-kubernetes-validations'] ?? []), mirror.rule];
      } else if (mirror.by === 'schema') {
        Object.assign(node, mirror.extension);
      }
    }
  }
  return spec;
}

/**
 * A CRD as the API server reads it (JSON field names such as x-kubernetes-validations). client-node's typed
 * models use other names: load it through `loadYaml`/`ObjectSerializer.deserialize` before a typed call.
 */
export interface CrdManifest {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: Record<string, unknown>;
}

export function customResourceDefinition(resource: ResourceDefinition): CrdManifest {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${resource.plural}.${API_GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'dfn' },
    },
    spec: {
      group: API_GROUP,
      names: {
        kind: resource.kind,
        listKind: `${resource.kind}List`,
        plural: resource.plural,
        singular: resource.singular,
        shortNames: resource.shortNames,
        categories: [DFN_CATEGORY],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {}, ...(resource.scale ? { scale: resource.scale } : {}) },
          additionalPrinterColumns: resource.columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: resource.description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: `${API_GROUP}/${API_VERSION}` },
                kind: { type: 'string', description: resource.kind },
                metadata: { type: 'object' },
                spec: specSchema(resource),
                status: structuralSchema(resource.status, 'output'),
              },
            } satisfies JSONSchemaProps,
          },
        },
      ],
    },
  };
}

export const customResourceDefinitions = (): CrdManifest[] => RESOURCES.map(customResourceDefinition);

/** The files of crds/ (or a chart's crds/): `<plural>.<group>.yaml`, one CRD each. */
export function crdFiles(): { name: string; content: string }[] {
  return customResourceDefinitions().map((crd) => ({
    name: `${crd.metadata.name}.yaml`,
    content:
      '# Generated by `npm run gen:crds` (scripts/gen-crds.ts) from api/: edit the zod schemas there, not this file.\n' +
      stringify(crd, { lineWidth: 0 }),
  }));
}
