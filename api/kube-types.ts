// Kubernetes shapes our resources embed, as zod schemas (so their CRD schema and TS types come from the
// same definition as ours): key references, status conditions, resource requirements, the API group.

import { z } from 'zod';
import { K8S_NAME } from './runner-config.js';

export const API_GROUP = 'dfn.dev';
export const API_VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

export const ObjectNameSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(K8S_NAME, 'must be a Kubernetes object name (lowercase letters, digits, "-" and ".")');

const KeySchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[-._a-zA-Z0-9]+$/, 'must be a ConfigMap or Secret key (letters, digits, "-", "_" and ".")');

export const ConfigMapKeyRefSchema = z
  .strictObject({
    name: ObjectNameSchema.describe('Name of the ConfigMap, in the same namespace.'),
    key: KeySchema.describe('The key within it.'),
  })
  .describe('A key of a ConfigMap in the same namespace.');

export const SecretKeyRefSchema = z
  .strictObject({
    name: ObjectNameSchema.describe('Name of the Secret, in the same namespace.'),
    key: KeySchema.describe('The key within it.'),
  })
  .describe('A key of a Secret in the same namespace.');

export const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;

/** metav1.Condition. */
export const StatusConditionSchema = z
  .strictObject({
    type: z.string().min(1).max(316).describe('Type of the condition, e.g. Ready.'),
    status: z.enum(CONDITION_STATUSES).describe('True, False or Unknown.'),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('The .metadata.generation the condition was set for.'),
    lastTransitionTime: z.iso.datetime().describe('When the status last changed.'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/, 'a reason is a CamelCase word')
      .describe('Why, as a CamelCase word a program can match.'),
    message: z.string().max(32_768).describe('Why, for a person.'),
  })
  .describe('One aspect of the current state (metav1.Condition).');

export type StatusCondition = z.infer<typeof StatusConditionSchema>;

export const ConditionListSchema = z
  .array(StatusConditionSchema)
  .describe('Conditions, one per type; Ready summarises the others.');

// A quantity such as 500m, 128Mi or 2, as Kubernetes writes them (strings, or plain numbers).
const QUANTITY =
  /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;
const QuantitySchema = z
  .union([z.string().regex(QUANTITY, 'must be a Kubernetes quantity, e.g. 500m or 128Mi'), z.number().int()])
  .describe('A quantity: 500m, 2, 128Mi, 1Gi.');

const SUFFIX_FACTORS: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/**
 * A quantity (500m, 128Mi, 1e3, 2) as a number, or undefined when it is none; to compare two or divide one
 * (the client library's parser is not exported and throws on decimals such as 1.5Gi).
 */
export function quantityValue(quantity: string | number): number | undefined {
  if (typeof quantity === 'number') return quantity;
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$/.exec(quantity.trim());
  const factor = m ? SUFFIX_FACTORS[m[2]!] : undefined;
  return m && factor !== undefined ? Number(m[1]) * factor : undefined;
}

export const ResourceRequirementsSchema = z
  .strictObject({
    requests: z
      .record(z.string(), QuantitySchema)
      .optional()
      .describe('Minimum resources per replica, e.g. {cpu: 100m, memory: 128Mi}.'),
    limits: z
      .record(z.string(), QuantitySchema)
      .optional()
      .describe('Maximum resources per replica, e.g. {memory: 256Mi}.'),
  })
  .describe("The runner container's resource requests and limits (as on any Pod).");
