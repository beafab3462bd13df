// An instance's settings against its revision's settings schema, each problem naming its field: unknown
// names, sensitive values given in plain settings, missing Secrets or keys, then required and type checks.

import type { V1Secret } from '@kubernetes/client-node';
import { type FunctionInstanceSpec, FunctionInstanceReasons as R } from '../../api/function-instance.js';
import { type SettingDefinition, settingsProblems } from '../../api/settings.js';

export type SettingsVerdict =
  | {
      valid: true;
      /** settings.json */
      plain: Record<string, unknown>;
      /** The values of the referenced Secret keys, by setting: for the pods' checksum. */
      secretValues: Record<string, string>;
    }
  | { valid: false; reason: string; message: string };

/** A Secret key's value as the runner will read it (one trailing newline dropped, as in runner/config-loader). */
function secretValue(secret: V1Secret, key: string): string | undefined {
  const raw = secret.data?.[key];
  return raw === undefined
    ? undefined
    : Buffer.from(raw, 'base64')
        .toString('utf8')
        .replace(/\r?\n$/, '');
}

export function checkSettings(
  spec: FunctionInstanceSpec,
  schema: readonly SettingDefinition[],
  secret: (name: string) => V1Secret | undefined,
): SettingsVerdict {
  const byName = new Map(schema.map((d) => [d.name, d]));
  const known = schema.length ? schema.map((d) => d.name).join(', ') : 'none';
  const plain = spec.settings ?? {};
  const invalid: string[] = [];
  for (const name of Object.keys(plain)) {
    const def = byName.get(name);
    if (!def) invalid.push(`spec.settings.${name}: not a setting of the function (its settings: ${known})`);
    else if (def.sensitive)
      invalid.push(
        `spec.settings.${name}: is sensitive: give it in spec.secretSettings (a Secret key), not in plain settings`,
      );
  }
  for (const name of Object.keys(spec.secretSettings ?? {})) {
    if (!byName.has(name))
      invalid.push(`spec.secretSettings.${name}: not a setting of the function (its settings: ${known})`);
  }
  if (invalid.length) return { valid: false, reason: R.InvalidSettings, message: invalid.join('; ') };

  const missing: string[] = [];
  const secretValues: Record<string, string> = {};
  for (const [name, { secretKeyRef }] of Object.entries(spec.secretSettings ?? {})) {
    const field = `spec.secretSettings.${name}.secretKeyRef`;
    const s = secret(secretKeyRef.name);
    const value = s && secretValue(s, secretKeyRef.key);
    if (!s) missing.push(`${field}: Secret "${secretKeyRef.name}" not found`);
    else if (value === undefined)
      missing.push(`${field}: Secret "${secretKeyRef.name}" has no key "${secretKeyRef.key}"`);
    else secretValues[name] = value;
  }
  if (missing.length) return { valid: false, reason: R.SecretNotFound, message: missing.join('; ') };

  const problems = settingsProblems(schema, { ...plain, ...secretValues });
  if (problems.length) return { valid: false, reason: R.InvalidSettings, message: problems.join('; ') };
  return { valid: true, plain, secretValues };
}
