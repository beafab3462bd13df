// Every zod refinement of our resources' specs, and how each reaches the user, since OpenAPI cannot express
// them: as a CEL rule the API server enforces, as a schema extension, or as a check the operator reports.

import type { z } from 'zod';
import { DestinationFunctionSpecSchema } from '../destination-function.js';
import { FunctionInstanceSpecSchema } from '../function-instance.js';
import { BATCHING_DEFAULTS, LIMITS_DEFAULTS, MAX_BATCH_SIZE } from '../runner-config.js';
import type { JSONSchemaProps, ValidationRule } from './structural-schema.js';

export type CrdKind = 'DestinationFunction' | 'FunctionInstance';

export type Mirror =
  /** The API server refuses it: a CEL rule on the schema node at the refinement's path. */
  | { by: 'cel'; rule: ValidationRule }
  /** The API server refuses it: a structural schema extension on that node. */
  | { by: 'schema'; extension: Partial<JSONSchemaProps> }
  /** Accepted by the API server; the operator parses the spec with the zod schema and reports it. */
  | { by: 'operator'; reportedAs: string; why: string };

export interface RefinementCheck {
  /** What the refinement checks, in one sentence. */
  what: string;
  mirror: Mirror;
}

/** One zod refinement (superRefine/refine), at its path in the resource. */
export interface Refinement {
  kind: CrdKind;
  /** `spec`, `spec.filters.require[]` (array items), `spec.settings{}` (map values). */
  path: string;
  checks: RefinementCheck[];
}

export const SPEC_SCHEMAS: Record<CrdKind, z.ZodType> = {
  DestinationFunction: DestinationFunctionSpecSchema,
  FunctionInstance: FunctionInstanceSpecSchema,
};

const INVALID_SPEC = 'condition Ready=False, reason InvalidSpec, the message naming the field';

// Values of any JSON type (x-kubernetes-preserve-unknown-fields) are invisible to CEL's type checker; through
// dyn() a rule can still ask whether one is present, but not what type it is (the API server refuses
// type() on preserved values), so type checks on them are the operator's.
const UNTYPED =
  'the value may be of any JSON type (x-kubernetes-preserve-unknown-fields), and the API server does not let CEL ask a preserved value its type';

// A filter condition's `value` must suit its op (the runner's ConditionSchema).
const filterConditionChecks: RefinementCheck[] = [
  {
    what: 'value is required by every op but exists/notExists, which take none',
    mirror: {
      by: 'cel',
      rule: {
        rule: "self.op in ['exists', 'notExists'] ? !has(dyn(self).value) : has(dyn(self).value)",
        message: 'value is required by every op except exists and notExists, which take none',
        fieldPath: '.value',
      },
    },
  },
  {
    what: 'in/notIn need a list, gt/gte/lt/lte a number, startsWith/endsWith/matches a string',
    mirror: { by: 'operator', reportedAs: INVALID_SPEC, why: UNTYPED },
  },
  {
    what: 'matches needs a valid JavaScript regular expression',
    mirror: {
      by: 'operator',
      reportedAs: INVALID_SPEC,
      why: "CEL's regular expressions are RE2, not JavaScript's: it would refuse valid ones (lookahead) and accept invalid ones",
    },
  },
];

export const REFINEMENTS: Refinement[] = [
  {
    kind: 'DestinationFunction',
    path: 'spec',
    checks: [
      {
        what: 'exactly one of code and codeFrom',
        mirror: {
          by: 'cel',
          rule: {
            rule: 'has(self.code) != has(self.codeFrom)',
            message: 'exactly one of spec.code and spec.codeFrom must be set',
          },
        },
      },
    ],
  },
  {
    kind: 'DestinationFunction',
    path: 'spec.settings',
    checks: [
      {
        what: 'each setting name once',
        mirror: {
          by: 'schema',
          extension: { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] },
        },
      },
    ],
  },
  {
    kind: 'DestinationFunction',
    path: 'spec.settings[]',
    checks: [
      {
        what: 'a sensitive setting has no default',
        mirror: {
          by: 'cel',
          rule: {
            rule: '!has(dyn(self).default) || !self.?sensitive.orValue(false)',
            message: 'a sensitive setting cannot have a default',
            fieldPath: '.default',
          },
        },
      },
      {
        what: "a default has the setting's type",
        mirror: { by: 'operator', reportedAs: 'condition Ready=False, reason InvalidSpec', why: UNTYPED },
      },
    ],
  },
  {
    kind: 'FunctionInstance',
    path: 'spec',
    checks: [
      {
        what: 'with batching enabled, limits.concurrency is at least batching.maxSize',
        mirror: {
          by: 'cel',
          rule: {
            // The same fallbacks as the zod refinement: the runner config's defaults.
            rule:
              `!self.?batching.?enabled.orValue(${BATCHING_DEFAULTS.enabled}) || ` +
              `self.?batching.?maxSize.orValue(${BATCHING_DEFAULTS.maxSize}) > ${MAX_BATCH_SIZE} || ` +
              `self.?batching.?maxSize.orValue(${BATCHING_DEFAULTS.maxSize}) <= ` +
              `self.?limits.?concurrency.orValue(${LIMITS_DEFAULTS.concurrency})`,
            message: 'limits.concurrency must be at least batching.maxSize when batching is enabled',
            fieldPath: '.limits.concurrency',
          },
        },
      },
      {
        what: 'a setting is in settings or in secretSettings, not both',
        mirror: {
          by: 'operator',
          reportedAs: 'condition SettingsValid=False, reason InvalidSettings, naming the setting',
          why: 'settings is a map of values of any JSON type, whose keys CEL cannot see (a rule on it would always pass)',
        },
      },
    ],
  },
  { kind: 'FunctionInstance', path: 'spec.filters.require[]', checks: filterConditionChecks },
  { kind: 'FunctionInstance', path: 'spec.filters.exclude[]', checks: filterConditionChecks },
];

/** Where zod refinements sit in a schema: `root`-relative paths, as in Refinement.path. */
export function refinementPaths(schema: z.ZodType, root: string): string[] {
  const found: string[] = [];
  walk(schema, root, found);
  return found;
}

function walk(schema: z.ZodType, path: string, found: string[]): void {
  const def = (schema as z.ZodType)._zod.def as z.core.$ZodTypeDef & Record<string, any>;
  for (const check of (def.checks ?? []) as z.core.$ZodCheck[]) {
    if (check._zod.def.check === 'custom') found.push(path);
  }
  switch (def.type) {
    case 'object':
      for (const [key, value] of Object.entries(def.shape as Record<string, z.ZodType>)) {
        walk(value, `${path}.${key}`, found);
      }
      return;
    case 'array':
      walk(def.element, `${path}[]`, found);
      return;
    case 'record':
      walk(def.keyType, `${path}{key}`, found);
      walk(def.valueType, `${path}{}`, found);
      return;
    case 'union':
      for (const option of def.options as z.ZodType[]) walk(option, path, found);
      return;
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'nonoptional':
      walk(def.innerType, path, found);
      return;
    case 'string':
    case 'number':
    case 'boolean':
    case 'enum':
    case 'literal':
    case 'unknown':
    case 'any':
      return;
    default:
      // Transforms, pipes, lazy schemas: neither JSON Schema nor this walk could see inside.
      throw new Error(`${path}: zod type "${def.type}" cannot be mirrored in a CRD`);
  }
}
