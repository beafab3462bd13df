// The runner config directory: what loads, and how each kind of mistake is reported (file and field named).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRunnerConfig, RunnerConfigError, runnerConfigReference } from '../../api/runner-config.js';
import { loadRunnerConfig } from '../../runner/config-loader.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const MINIMAL = `apiVersion: dfn.dev/v1alpha1
kind: RunnerConfig
instance: { namespace: default, name: crm, source: web }
function: { revision: abc123 }
`;

function configDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'dfn-runner-config-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

async function issuesOf(dir: string): Promise<string[]> {
  try {
    await loadRunnerConfig(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(RunnerConfigError);
    return (err as RunnerConfigError).issues.map(
      (i) => `${i.file}: ${i.path ? `${i.path}: ` : ''}${i.message}`,
    );
  }
  throw new Error('expected the config to be rejected');
}

describe('loading a config directory', () => {
  it('applies defaults to a minimal config', async () => {
    const loaded = await loadRunnerConfig(
      configDir({ 'config.yaml': MINIMAL, 'function.js': 'async function onTrack() {}' }),
    );
    expect(loaded.config.batching).toEqual({ enabled: false, maxSize: 20, maxWaitMs: 10_000 });
    expect(loaded.config.retry.maxAttempts).toBe(10);
    expect(loaded.config.nats.url).toBe('nats://127.0.0.1:4222');
    expect(loaded.settings).toEqual({});
    expect(loaded.source).toContain('onTrack');
  });

  it('merges settings.json with secrets/, marking the secret values sensitive', async () => {
    const loaded = await loadRunnerConfig(
      configDir({
        'config.yaml': MINIMAL,
        'function.js': 'async function onTrack() {}',
        'settings.json': '{"region": "eu", "retries": 3}',
        'secrets/apiKey': 'sk_live_123\n',
        'secrets/webhookSecret': 'whsec',
      }),
    );
    expect(loaded.settings).toEqual({
      region: 'eu',
      retries: 3,
      apiKey: 'sk_live_123',
      webhookSecret: 'whsec',
    });
    expect(loaded.sensitiveKeys).toEqual(['apiKey', 'webhookSecret']);
    expect(loaded.sensitiveValues).toEqual(['sk_live_123', 'whsec']);
  });

  it('reads a Secret mounted the Kubernetes way (..data symlinks)', async () => {
    const dir = configDir({ 'config.yaml': MINIMAL, 'function.js': 'async function onTrack() {}' });
    const secrets = join(dir, 'secrets');
    mkdirSync(join(secrets, '..2025_01_01_00_00_00.000'), { recursive: true });
    writeFileSync(join(secrets, '..2025_01_01_00_00_00.000', 'apiKey'), 'k8s-secret');
    symlinkSync('..2025_01_01_00_00_00.000', join(secrets, '..data'));
    symlinkSync('..data/apiKey', join(secrets, 'apiKey'));
    const loaded = await loadRunnerConfig(dir);
    expect(loaded.settings).toEqual({ apiKey: 'k8s-secret' });
  });

  it('reads NATS credentials from files relative to the directory', async () => {
    const loaded = await loadRunnerConfig(
      configDir({
        'config.yaml': `${MINIMAL}nats: { user: runner, passwordFile: nats/password }\n`,
        'function.js': 'async function onTrack() {}',
        'nats/password': 's3cret\n',
      }),
    );
    expect(loaded.natsAuth).toEqual({ user: 'runner', pass: 's3cret' });
  });
});

describe('reporting mistakes', () => {
  it('names the directory when it does not exist', async () => {
    expect(await issuesOf('/nonexistent/dfn-config')).toEqual(['/nonexistent/dfn-config: does not exist']);
  });

  it('reports every missing file at once', async () => {
    const issues = await issuesOf(configDir({ 'settings.json': '{}' }));
    expect(issues).toHaveLength(2);
    expect(issues[0]).toMatch(/^config\.yaml: missing/);
    expect(issues[1]).toMatch(/^function\.js: missing/);
  });

  it('gives the line and column of a YAML syntax error', async () => {
    const issues = await issuesOf(
      configDir({ 'config.yaml': 'apiVersion: dfn.dev/v1alpha1\ninstance: [a, b\n', 'function.js': 'x' }),
    );
    expect(issues[0]).toMatch(/^config\.yaml: line \d+, column \d+: /);
  });

  it('names each invalid field with its path, and suggests the field meant by a typo', async () => {
    const issues = await issuesOf(
      configDir({
        'config.yaml': `${MINIMAL}batching: { enabled: true, maxsize: 10, maxWaitMs: -1 }\nretry: { maxAttempts: 0 }\nfilters: { require: [{ field: properties.total, op: gt, value: "100" }] }\n`,
        'function.js': 'async function onBatch() {}',
      }),
    );
    expect(issues).toEqual(
      expect.arrayContaining([
        'config.yaml: batching.maxsize: unknown field (did you mean "maxSize"?)',
        'config.yaml: batching.maxWaitMs: must be at least 1 (got -1)',
        'config.yaml: retry.maxAttempts: must be at least 1 (got 0)',
        'config.yaml: filters.require[0].value: op "gt" needs a number (got string)',
      ]),
    );
  });

  it('requires the version and the instance', async () => {
    const issues = await issuesOf(configDir({ 'config.yaml': 'kind: RunnerConfig\n', 'function.js': 'x' }));
    expect(issues).toEqual([
      'config.yaml: apiVersion: required',
      'config.yaml: instance: required',
      'config.yaml: function: required',
    ]);
  });

  it('rejects an unknown apiVersion, saying which one it wants', async () => {
    const issues = await issuesOf(
      configDir({ 'config.yaml': MINIMAL.replace('v1alpha1', 'v9'), 'function.js': 'x' }),
    );
    expect(issues).toEqual(['config.yaml: apiVersion: must be "dfn.dev/v1alpha1" (got "dfn.dev/v9")']);
  });

  it('rejects settings.json that is not a JSON object', async () => {
    const bad = await issuesOf(
      configDir({ 'config.yaml': MINIMAL, 'function.js': 'x', 'settings.json': '{"a": ' }),
    );
    expect(bad[0]).toMatch(/^settings\.json: not valid JSON/);
    const list = await issuesOf(
      configDir({ 'config.yaml': MINIMAL, 'function.js': 'x', 'settings.json': '[1]' }),
    );
    expect(list).toEqual(['settings.json: must be a JSON object of setting names to values (got a list)']);
  });

  it('refuses a setting that is both plain and sensitive', async () => {
    const issues = await issuesOf(
      configDir({
        'config.yaml': MINIMAL,
        'function.js': 'x',
        'settings.json': '{"apiKey": "x"}',
        'secrets/apiKey': 'y',
      }),
    );
    expect(issues).toEqual([
      'secrets/apiKey: setting "apiKey" is also in settings.json: a setting is either sensitive (secrets/) or not',
    ]);
  });

  it('names the field of a credentials file that cannot be read', async () => {
    const issues = await issuesOf(
      configDir({
        'config.yaml': `${MINIMAL}nats: { credentialsFile: missing.creds }\n`,
        'function.js': 'x',
      }),
    );
    expect(issues[0]).toMatch(/^config\.yaml: nats\.credentialsFile: cannot read .*missing\.creds: ENOENT$/);
  });

  it('requires room for a full batch when batching', () => {
    expect(() =>
      parseRunnerConfig({
        apiVersion: 'dfn.dev/v1alpha1',
        kind: 'RunnerConfig',
        instance: { namespace: 'default', name: 'crm', source: 'web' },
        function: { revision: '1' },
        batching: { enabled: true, maxSize: 300 },
        limits: { concurrency: 100 },
      }),
    ).toThrow(
      'limits.concurrency: must be at least batching.maxSize (300) when batching is enabled (got 100)',
    );
  });
});

/** A Markdown table as rows of trimmed cells, so column padding added by a formatter does not matter. */
function tableRows(markdown: string): string[] {
  return markdown
    .split('\n')
    .filter((line) => line.trimStart().startsWith('|'))
    .map((line) =>
      line
        .trim()
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => (/^\s*-+\s*$/.test(cell) ? '---' : cell.trim()))
        .join(' | '),
    );
}

describe('the reference documentation', () => {
  it('docs/runner-config.md carries the field reference generated from the schema', () => {
    const docs = readFileSync(new URL('../../docs/runner-config.md', import.meta.url), 'utf8');
    const reference = docs.slice(docs.indexOf('## Field reference'));
    // Regenerate the table with `dfn runner --explain` when a field changes.
    expect(tableRows(reference)).toEqual(tableRows(runnerConfigReference()));
  });
});
