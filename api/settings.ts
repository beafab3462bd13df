// A function's settings schema (declared on its DestinationFunction) and the check of an instance's
// values against it. Values that fail the check make every invocation end as Invalid Settings.

export const SETTING_TYPES = ['string', 'number', 'boolean', 'array', 'map'] as const;
export type SettingType = (typeof SETTING_TYPES)[number];

export interface SettingDefinition {
  /** The key handlers read: `settings.<name>`. */
  name: string;
  type: SettingType;
  required?: boolean;
  /** Stored in a Secret and redacted from logs, traces and messages. */
  sensitive?: boolean;
  description?: string;
}

function typeOf(value: unknown): SettingType | 'null' | 'other' {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return 'map';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
    return typeof value as SettingType;
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
    const missing = value === undefined || value === null || value === '';
    if (missing) {
      if (def.required) problems.push(`setting "${def.name}" is required`);
      continue;
    }
    const actual = typeOf(value);
    if (actual !== def.type) problems.push(`setting "${def.name}" must be a ${def.type}, not a ${actual}`);
  }
  return problems;
}
