// A zod schema as a Kubernetes structural OpenAPI v3 schema: zod's own JSON Schema output, rewritten to
// what the API server accepts. Anything it cannot carry over fails loudly instead of vanishing.

import { z } from 'zod';

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps we generate. */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  items?: JSONSchemaProps;
  additionalProperties?: JSONSchemaProps;
  enum?: unknown[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  anyOf?: JSONSchemaProps[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: ValidationRule[];
}

export interface ValidationRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

export class SchemaConversionError extends Error {
  override readonly name = 'SchemaConversionError';
  readonly code = 'DFN_CRD_SCHEMA';
  constructor(
    readonly path: string,
    what: string,
  ) {
    super(`${path || '<root>'}: ${what}`);
  }
}

// JSON Schema keywords a structural schema carries as they are.
const COPIED = ['description', 'pattern', 'minLength', 'maxLength', 'minItems', 'maxItems', 'enum'] as const;
// Formats the API server validates (others it rejects or ignores, so they would not mean what zod means).
const FORMATS = new Set(['date-time']);
// z.number().int() bounds: what every integer already is, noise in a CRD.
const SAFE_INT = Number.MAX_SAFE_INTEGER;

/**
 * The structural schema of `schema`'s input (as written, no defaults: the operator applies them).
 * `path` names the node in messages and in `propertyNames` CEL rules.
 */
export function structuralSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): JSONSchemaProps {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'throw', cycles: 'throw', reused: 'inline' });
  return convert(json as Record<string, unknown>, '');
}

/** JSON path segments, as `spec.filters.require[].value`. */
const child = (path: string, key: string) => (path ? `${path}.${key}` : key);

function convert(node: Record<string, unknown>, path: string): JSONSchemaProps {
  const out: JSONSchemaProps = {};
  const rules: ValidationRule[] = [];
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case '$schema':
      case 'default': // applied by the operator when it writes the runner config, never frozen into etcd
        break;
      case 'type':
        if (value === 'null') throw new SchemaConversionError(path, 'null is not a Kubernetes type');
        out.type = value as JSONSchemaProps['type'];
        break;
      case 'const':
        out.enum = [value];
        break;
      case 'format':
        if (!FORMATS.has(value as string))
          throw new SchemaConversionError(path, `format ${value} not carried`);
        out.format = value as string;
        break;
      case 'minimum':
      case 'maximum':
        if (Math.abs(value as number) !== SAFE_INT) out[key] = value as number;
        break;
      case 'exclusiveMinimum':
        out.minimum = value as number;
        out.exclusiveMinimum = true;
        break;
      case 'exclusiveMaximum':
        out.maximum = value as number;
        out.exclusiveMaximum = true;
        break;
      case 'properties': {
        const props = value as Record<string, Record<string, unknown>>;
        out.properties = {};
        for (const [name, sub] of Object.entries(props)) {
          const converted = convert(sub, child(path, name));
          if (!converted.description)
            throw new SchemaConversionError(child(path, name), 'has no description');
          out.properties[name] = converted;
        }
        break;
      }
      case 'required':
        if ((value as string[]).length) out.required = value as string[];
        break;
      case 'additionalProperties':
        // false is zod's strictObject: structural schemas prune unknown fields instead (and refuse them
        // under kubectl's strict field validation); an object schema is a map's values.
        if (value !== false)
          out.additionalProperties = convert(value as Record<string, unknown>, `${path}{}`);
        break;
      case 'items':
        out.items = convert(value as Record<string, unknown>, `${path}[]`);
        break;
      case 'propertyNames': {
        const keys = keyRules(value as Record<string, unknown>, path);
        // CEL cannot see the keys of a map whose values are untyped: such a rule would always pass.
        if (
          keys.length &&
          Object.keys((node.additionalProperties as object | undefined) ?? {}).length === 0
        ) {
          throw new SchemaConversionError(path, 'keys of a map of untyped values cannot be constrained');
        }
        rules.push(...keys);
        break;
      }
      case 'anyOf':
        Object.assign(out, intOrString(value as Record<string, unknown>[], path));
        break;
      default:
        if (key.startsWith('x-kubernetes-')) {
          (out as Record<string, unknown>)[key] = value;
        } else if ((COPIED as readonly string[]).includes(key)) {
          (out as Record<string, unknown>)[key] = value;
        } else {
          throw new SchemaConversionError(path, `JSON Schema keyword "${key}" has no structural equivalent`);
        }
    }
  }
  // z.unknown(): any JSON value, kept as written (settings values, filter values, defaults).
  if (!out.type && !out['x-kubernetes-int-or-string']) out['x-kubernetes-preserve-unknown-fields'] = true;
  if (rules.length) out['x-kubernetes-validations'] = [...(out['x-kubernetes-validations'] ?? []), ...rules];
  return out;
}

// OpenAPI cannot constrain a map's keys; CEL can.
function keyRules(names: Record<string, unknown>, path: string): ValidationRule[] {
  const rules: ValidationRule[] = [];
  const { type, pattern, maxLength, description: _d, ...rest } = names;
  if (type !== 'string' || Object.keys(rest).length) {
    throw new SchemaConversionError(path, `map keys other than patterned strings: ${JSON.stringify(names)}`);
  }
  if (maxLength !== undefined) {
    rules.push({
      rule: `self.all(k, size(k) <= ${maxLength})`,
      message: `keys must have at most ${maxLength} characters`,
    });
  }
  if (pattern !== undefined) {
    rules.push({
      rule: `self.all(k, k.matches(${JSON.stringify(pattern)}))`,
      message: `keys must match ${pattern}`,
    });
  }
  return rules;
}

// The one union Kubernetes knows: IntOrString (quantities, ports).
function intOrString(options: Record<string, unknown>[], path: string): JSONSchemaProps {
  const types = options.map((o) => o.type).sort();
  if (options.length !== 2 || types[0] !== 'integer' || types[1] !== 'string') {
    throw new SchemaConversionError(
      path,
      'unions other than integer-or-string have no structural equivalent',
    );
  }
  const str = options.find((o) => o.type === 'string')!;
  const { type: _t, pattern, ...rest } = str;
  if (Object.keys(rest).length)
    throw new SchemaConversionError(path, 'int-or-string strings take only a pattern');
  return {
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    'x-kubernetes-int-or-string': true,
    ...(pattern ? { pattern: pattern as string } : {}),
  };
}
