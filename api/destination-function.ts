// DestinationFunction (dfn.dev/v1alpha1): what the user writes — the code, its settings schema and its
// limits. Its CRD schema (crds/) and TS types are generated from these zod schemas; see api/crd/.

import type { V1ObjectMeta } from '@kubernetes/client-node';
import { z } from 'zod';
import { HANDLER_NAMES } from './events.js';
import { type API_GROUP_VERSION, ConditionListSchema, ConfigMapKeyRefSchema } from './kube-types.js';
import { LimitsSchema } from './runner-config.js';
import { SettingDefinitionListSchema } from './settings.js';

export const DESTINATION_FUNCTION_KIND = 'DestinationFunction';

const count = (description: string) => z.number().int().min(0).describe(description);

export const DestinationFunctionSpecSchema = z
  .strictObject({
    code: z
      .string()
      .min(1)
      .optional()
      .describe(
        'The function source, as written for Segment: top-level handlers such as `async function ' +
          'onTrack(event, settings)`, no require, no exports. Exactly one of code and codeFrom.',
      ),
    codeFrom: z
      .strictObject({
        configMapKeyRef: ConfigMapKeyRefSchema.describe(
          'The ConfigMap key holding the source (e.g. made by `kubectl create configmap --from-file`).',
        ),
      })
      .optional()
      .describe('Where to read the source instead of code. Exactly one of code and codeFrom.'),
    settings: SettingDefinitionListSchema.optional().describe(
      "The function's settings schema, as in Segment: each FunctionInstance gives values for them, and " +
        'an event whose instance lacks a required one (or has one of the wrong type) is discarded as ' +
        'Invalid Settings.',
    ),
    limits: LimitsSchema.pick({ timeoutMs: true, memoryMb: true })
      .optional()
      .describe('Limits of every invocation, in every instance of the function.'),
  })
  .superRefine((spec, ctx) => {
    if ((spec.code === undefined) === (spec.codeFrom === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: spec.code === undefined ? [] : ['codeFrom'],
        message: 'exactly one of spec.code and spec.codeFrom must be set',
      });
    }
  })
  .describe('The function: its code, settings schema and limits.');

export const DestinationFunctionStatusSchema = z
  .strictObject({
    observedGeneration: count('The .metadata.generation this status describes.').optional(),
    latestRevision: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Revision of the current code and settings schema: grows by one with each change of either.'),
    handlers: z
      .array(z.enum(HANDLER_NAMES))
      .optional()
      .describe('The handlers the code defines, e.g. [onTrack, onBatch].'),
    instances: count('FunctionInstances that run this function.').optional(),
    delivered: count('Events delivered, summed over its instances.').optional(),
    retrying: count('Events waiting for another attempt, summed over its instances.').optional(),
    failed: count(
      'Events that failed for good (discarded or dead-lettered), summed over its instances.',
    ).optional(),
    conditions: ConditionListSchema.optional(),
  })
  .describe('What the operator observed: revision, handlers, delivery counts, conditions.');

/** The spec as written (what the API server stores: no defaults). */
export type DestinationFunctionSpecInput = z.input<typeof DestinationFunctionSpecSchema>;
/** The spec after validation, defaults applied (what the operator works with). */
export type DestinationFunctionSpec = z.output<typeof DestinationFunctionSpecSchema>;
export type DestinationFunctionStatus = z.infer<typeof DestinationFunctionStatusSchema>;

export interface DestinationFunction {
  apiVersion: typeof API_GROUP_VERSION;
  kind: typeof DESTINATION_FUNCTION_KIND;
  metadata: V1ObjectMeta;
  spec: DestinationFunctionSpecInput;
  status?: DestinationFunctionStatus;
}

/** Condition types of a DestinationFunction. Ready summarises CodeValid and the operator's own checks. */
export const DestinationFunctionConditions = {
  Ready: 'Ready',
  /** False when the code does not parse (message: `line:column: what`) or defines no handler. */
  CodeValid: 'CodeValid',
} as const;

/** Reasons of a DestinationFunction's conditions: CamelCase words a program can match. */
export const DestinationFunctionReasons = {
  /** Ready: the latest revision holds the current code and settings schema. */
  RevisionReady: 'RevisionReady',
  /** Ready: the spec fails a check the API server cannot make (api/crd/refinements.ts). */
  InvalidSpec: 'InvalidSpec',
  /** Ready: being deleted, waiting until no FunctionInstance uses it. */
  InUse: 'InUse',
  /** CodeValid: the code loaded and defines handlers. */
  CodeLoaded: 'CodeLoaded',
  /** CodeValid: the code does not parse; the message starts with `line:column:`. */
  SyntaxError: 'SyntaxError',
  /** CodeValid: the code threw or could not run at its top level. */
  LoadFailed: 'LoadFailed',
  /** CodeValid: the code defines none of the handlers (onTrack, …, onBatch). */
  NoHandlers: 'NoHandlers',
  /** CodeValid: the ConfigMap or key named by spec.codeFrom does not exist. */
  CodeNotFound: 'CodeNotFound',
} as const;
