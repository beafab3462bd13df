// A function's settings schema (declared on its DestinationFunction) and the check of an instance's
// values against it. Values that fail the check make every invocation end as Invalid Settings.

import { z } from 'zod';

export const SETTING_TYPES = ['string', 'number', 'boolean', 'array', 'map'] as const;
export type SettingType = (typeof SETTING_TYPES)[number];

/** What a setting name must be: the key handlers read as `settings.<name>`. */
export const SETTING_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
export const SETTING_NAME_MAX = 128;

export const SettingNameSchema = z
  .string()
  .max(SETTING_NAME_MAX)
  .regex(SETTING_NAME, 'a setting name is a JavaScript identifier')
  .describe('The key handlers read: `settings.<name>`.');

export const SettingDefinitionSchema = z
  .strictObject({
    name: SettingNameSchema,
    label: z.string().optional().describe('Human-readable name shown instead of `name` (as in Segment).'),
    type: z.enum(SETTING_TYPES).describe('string, number, boolean, array or map (a JSON object).'),
    required: z
      .boolean()
      .default(false)
      .describe('Events are discarded as Invalid Settings while it is missing.'),
    sensitive: z
      .boolean()
      .default(false)
      .describe('Kept in a Secret and redacted from logs, request traces, records and messages.'),
    description: z.string().optional().describe('Shown to whoever fills in the setting.'),
    default: z
      .unknown()
      .optional()
      .describe(
        "Value used while an instance gives none, of the setting's type. Not allowed on a sensitive setting " +
          '(a default would be a secret written in the function).',
      ),
  })
  .superRefine((def, ctx) => {
    if (def.default === undefined) return;
    if (def.sensitive) {
      ctx.addIssue({
        code: 'custom',
        path: ['default'],
        message: 'a sensitive setting cannot have a default',
      });
    }
    const actual = typeOf(def.default);
    if (actual !== def.type) {
      ctx.addIssue({
        code: 'custom',
        path: ['default'],
        message: `must be a ${def.type}, like the setting (got a ${actual})`,
      });
    }
  })
  .describe('One setting the function reads.');

export type SettingDefinition = z.input<typeof SettingDefinitionSchema>;

/** A function's settings schema: its settings, each name once. */
export const SettingDefinitionListSchema = z.array(SettingDefinitionSchema).superRefine((defs, ctx) => {
  const seen = new Set<string>();
  defs.forEach((def, i) => {
    if (seen.has(def.name)) {
      ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `setting "${def.name}" is declared twice` });
    }
    seen.add(def.name);
  });
});

function typeOf(value: unknown): SettingType | 'null' | 'other' {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return 'map';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return typeof value as SettingType;
  }
  return 'other';
}

/** `values` with each missing setting that has a default filled in (what the function then receives). */
export function withSettingDefaults(
  schema: readonly SettingDefinition[],
  values: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...values };
  for (const def of schema) {
    if (def.default !== undefined && isMissing(out[def.name])) out[def.name] = structuredClone(def.default);
  }
  return out;
}

const isMissing = (value: unknown) => value === undefined || value === null || value === '';

/** Problems with `values` under `schema`, one sentence each; empty when the settings are valid. */
export function settingsProblems(
  schema: readonly SettingDefinition[],
  values: Record<string, unknown>,
): string[] {
  const problems: string[] = [];
  for (const def of schema) {
    const value = isMissing(values[def.name]) ? def.default : values[def.name];
    if (isMissing(value)) {
      if (def.required) problems.push(`setting "${def.name}" is required`);
      continue;
    }
    const actual = typeOf(value);
    if (actual !== def.type) problems.push(`setting "${def.name}" must be a ${def.type}, not a ${actual}`);
  }
  return problems;
}
