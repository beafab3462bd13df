// A function's settings schema (api/settings.ts), shared by the DestinationFunction CRD and the runner:
// labels, defaults (never on a sensitive setting, always of the setting's type), each name once.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  SettingDefinitionListSchema,
  SettingDefinitionSchema,
  settingsProblems,
  withSettingDefaults,
} from '../../api/settings.js';
import { loadRunnerConfig } from '../../runner/config-loader.js';

const messages = (result: { success: boolean; error?: { issues: { message: string }[] } }) =>
  result.error?.issues.map((i) => i.message) ?? [];

describe('setting definitions', () => {
  it('take a label and a default of their own type', () => {
    const def = { name: 'region', label: 'Data region', type: 'string', default: 'eu' } as const;
    expect(SettingDefinitionSchema.parse(def)).toEqual({ ...def, required: false, sensitive: false });
  });

  it('refuse a default on a sensitive setting', () => {
    const result = SettingDefinitionSchema.safeParse({
      name: 'apiKey',
      type: 'string',
      sensitive: true,
      default: 'x',
    });
    expect(messages(result)).toEqual(['a sensitive setting cannot have a default']);
  });

  it.each([
    ['string', 3, 'number'],
    ['number', '3', 'string'],
    ['boolean', 'true', 'string'],
    ['array', { a: 1 }, 'map'],
    ['map', [1], 'array'],
  ])('refuse a %s setting whose default is a %s', (type, value, got) => {
    const result = SettingDefinitionSchema.safeParse({ name: 's', type, default: value });
    expect(messages(result)).toEqual([`must be a ${type}, like the setting (got a ${got})`]);
  });

  it('refuse a name declared twice', () => {
    const result = SettingDefinitionListSchema.safeParse([
      { name: 'url', type: 'string' },
      { name: 'url', type: 'number' },
    ]);
    expect(messages(result)).toEqual(['setting "url" is declared twice']);
    expect(result.error!.issues[0]!.path).toEqual([1, 'name']);
  });
});

describe('defaults', () => {
  const schema = [
    { name: 'region', type: 'string', default: 'eu', required: true },
    { name: 'tags', type: 'array', default: ['a'] },
    { name: 'url', type: 'string', required: true },
  ] as const;

  it('fill what an instance leaves out (missing, null or empty), not what it gives', () => {
    expect(withSettingDefaults(schema, { url: 'u' })).toEqual({ url: 'u', region: 'eu', tags: ['a'] });
    expect(withSettingDefaults(schema, { region: '', tags: null })).toEqual({ region: 'eu', tags: ['a'] });
    expect(withSettingDefaults(schema, { region: 'us', tags: [] })).toEqual({ region: 'us', tags: [] });
  });

  it('are copies: a function that mutates its settings cannot change the default', () => {
    const filled = withSettingDefaults(schema, {});
    (filled.tags as string[]).push('mutated');
    expect(withSettingDefaults(schema, {}).tags).toEqual(['a']);
  });

  it('satisfy a required setting; one without a default is still missing', () => {
    expect(settingsProblems(schema, {})).toEqual(['setting "url" is required']);
  });

  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('reach the function through the runner config directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfn-settings-'));
    dirs.push(dir);
    writeFileSync(
      join(dir, 'config.yaml'),
      stringify({
        apiVersion: 'dfn.dev/v1alpha1',
        kind: 'RunnerConfig',
        instance: { namespace: 'default', name: 'i', source: 'web' },
        function: { revision: '1', settingsSchema: schema },
      }),
    );
    writeFileSync(join(dir, 'function.js'), 'async function onTrack() {}');
    writeFileSync(join(dir, 'settings.json'), JSON.stringify({ url: 'https://example.com', region: 'us' }));
    const loaded = await loadRunnerConfig(dir);
    expect(loaded.settings).toEqual({ url: 'https://example.com', region: 'us', tags: ['a'] });
  });
});
