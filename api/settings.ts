// A function's settings schema (declared on its DestinationFunction) and the check of an instance's
// values against it. Values that fail the check make every invocation end as Invalid Settings.

import { z } from 'zod';

export const SETTING_TYPES = ['string', 'number', 'boolean', 'array', 'map'] as const;
export type SettingType = (typeof SETTING_TYPES)[number];

export const SettingDefinitionSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, 'a setting name is a JavaScript identifier')
      .describe('The key handlers read: `settings.<name>`.'),
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
  })
  .describe('One setting the function reads.');

export type SettingDefinition = z.input<typeof SettingDefinitionSchema>;

function typeOf(value: unknown): SettingType | 'null' | 'other' {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return 'map';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return typeof value as SettingType;
  }
  return 'other';
}

/** Problems with `values` under `schema`, one sentence each; empty when the settings are valid. */
export function settingsProblems(
  schema: readonly SettingDefinition[],
  values: Record<string, unknown>,
): string[] {
  const problems: string[] = [];
  for (const def of schema) {
    const value = values[def.name];
    if (value === undefined || value === null || value === '') {
      if (def.required) problems.push(`setting "${def.name}" is required`);
      continue;
    }
    const actual = typeOf(value);
    if (actual !== def.type) problems.push(`setting "${def.name}" must be a ${def.type}, not a ${actual}`);
  }
  return problems;
}
