// Reads a runner config directory (see api/runner-config.ts for its layout and schema) into one value.
// Every problem across all files is collected and reported together, each naming its file and field.

import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { FunctionSettings } from '../api/events.js';
import {
  type ConfigIssue,
  parseRunnerConfig,
  RUNNER_CONFIG_FILES,
  type RunnerConfig,
  RunnerConfigError,
} from '../api/runner-config.js';
import { withSettingDefaults } from '../api/settings.js';
import { podHttpHost, podHttpPort, podPath } from '../lib/pod-env.js';

export interface NatsAuth {
  token?: string;
  user?: string;
  pass?: string;
  /** Contents of a .creds file. */
  creds?: Uint8Array;
}

export interface LoadedRunnerConfig {
  dir: string;
  config: RunnerConfig;
  /** function.js */
  source: string;
  /** settings.json merged with secrets/. */
  settings: FunctionSettings;
  /** Names of the settings that came from secrets/. */
  sensitiveKeys: string[];
  /** Their values, for redaction. */
  sensitiveValues: string[];
  natsAuth: NatsAuth;
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Secret values as Kubernetes mounts them: exact bytes, except one trailing newline, which `echo` and
 * editors add and which a token or password never means to contain.
 */
export function secretValue(raw: string): string {
  return raw.replace(/\r?\n$/, '');
}

async function readConfigYaml(dir: string, issues: ConfigIssue[]): Promise<RunnerConfig | undefined> {
  const file = RUNNER_CONFIG_FILES.config;
  const text = await readText(join(dir, file));
  if (text === undefined) {
    issues.push({
      file,
      path: '',
      message: 'missing: the config directory needs a config.yaml (see `dfn runner --explain`)',
    });
    return undefined;
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      // Pretty errors end their first line with the position and add a code excerpt: keep the essentials.
      const pos = e.linePos?.[0];
      const message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      issues.push({
        file,
        path: '',
        message: `${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}${message}`,
      });
    }
    return undefined;
  }
  try {
    return parseRunnerConfig(doc.toJS(), dir);
  } catch (err) {
    if (err instanceof RunnerConfigError) {
      issues.push(...err.issues);
      return undefined;
    }
    throw err;
  }
}

async function readSettings(dir: string, issues: ConfigIssue[]): Promise<FunctionSettings> {
  const file = RUNNER_CONFIG_FILES.settings;
  const text = await readText(join(dir, file));
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    issues.push({ file, path: '', message: `not valid JSON: ${(err as Error).message}` });
    return {};
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    issues.push({
      file,
      path: '',
      message: `must be a JSON object of setting names to values (got ${Array.isArray(value) ? 'a list' : String(value)})`,
    });
    return {};
  }
  return value as FunctionSettings;
}

async function readSecrets(dir: string, issues: ConfigIssue[]): Promise<Map<string, string>> {
  const secrets = new Map<string, string>();
  const secretsDir = join(dir, RUNNER_CONFIG_FILES.secrets);
  let names: string[];
  try {
    names = await readdir(secretsDir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return secrets;
    issues.push({
      file: `${RUNNER_CONFIG_FILES.secrets}/`,
      path: '',
      message: `cannot be read: ${(err as Error).message}`,
    });
    return secrets;
  }
  for (const name of names.sort()) {
    // Kubernetes secret volumes hold `..data` and timestamped directories beside the keys' symlinks.
    if (name.startsWith('.')) continue;
    const path = join(secretsDir, name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) continue;
    secrets.set(name, secretValue(await readFile(path, 'utf8')));
  }
  return secrets;
}

async function readAuthFile(
  dir: string,
  field: string,
  path: string | undefined,
  issues: ConfigIssue[],
): Promise<Buffer | undefined> {
  if (!path) return undefined;
  const full = isAbsolute(path) ? podPath(path) : resolve(dir, path);
  try {
    return await readFile(full);
  } catch (err) {
    issues.push({
      file: RUNNER_CONFIG_FILES.config,
      path: field,
      message: `cannot read ${full}: ${errnoCode(err) ?? (err as Error).message}`,
    });
    return undefined;
  }
}

/** Loads and validates a config directory; throws RunnerConfigError listing every problem. */
export async function loadRunnerConfig(dirArg: string): Promise<LoadedRunnerConfig> {
  const dir = resolve(podPath(dirArg));
  const dirInfo = await stat(dir).catch(() => undefined);
  if (!dirInfo?.isDirectory()) {
    throw new RunnerConfigError(dir, [
      { file: dir, path: '', message: dirInfo ? 'is not a directory' : 'does not exist' },
    ]);
  }
  const issues: ConfigIssue[] = [];
  const config = await readConfigYaml(dir, issues);

  const source = await readText(join(dir, RUNNER_CONFIG_FILES.function));
  if (source === undefined)
    issues.push({
      file: RUNNER_CONFIG_FILES.function,
      path: '',
      message: "missing: the function's code goes here",
    });
  else if (source.trim() === '')
    issues.push({ file: RUNNER_CONFIG_FILES.function, path: '', message: 'is empty' });

  const plain = await readSettings(dir, issues);
  const secrets = await readSecrets(dir, issues);
  for (const name of secrets.keys()) {
    if (Object.hasOwn(plain, name)) {
      issues.push({
        file: `${RUNNER_CONFIG_FILES.secrets}/${name}`,
        path: '',
        message: `setting "${name}" is also in settings.json: a setting is either sensitive (secrets/) or not`,
      });
    }
  }

  const natsAuth: NatsAuth = {};
  if (config) {
    const n = config.nats;
    const creds = await readAuthFile(dir, 'nats.credentialsFile', n.credentialsFile, issues);
    const token = await readAuthFile(dir, 'nats.tokenFile', n.tokenFile, issues);
    const password = await readAuthFile(dir, 'nats.passwordFile', n.passwordFile, issues);
    if (creds) natsAuth.creds = new Uint8Array(creds);
    if (token) natsAuth.token = secretValue(token.toString('utf8'));
    if (n.user && password) {
      natsAuth.user = n.user;
      natsAuth.pass = secretValue(password.toString('utf8'));
    }
  }

  // Run by the local kubelet, the Pod's HTTP port is remapped and served on loopback (lib/pod-env.ts, as
  // the paths above are).
  try {
    const port = podHttpPort();
    if (config && port !== undefined) config.http.port = port;
  } catch (err) {
    issues.push({ file: 'DFN_HTTP_PORT', path: '', message: (err as Error).message });
  }
  try {
    const host = podHttpHost();
    if (config && host !== undefined) config.http.host = host;
  } catch (err) {
    issues.push({ file: 'DFN_HTTP_HOST', path: '', message: (err as Error).message });
  }

  if (issues.length > 0 || !config || source === undefined) throw new RunnerConfigError(dir, issues);
  return {
    dir,
    config,
    source,
    // Defaults of the function's settings schema fill what the instance left out (never a sensitive one).
    settings: withSettingDefaults(config.function.settingsSchema, {
      ...plain,
      ...Object.fromEntries(secrets),
    }),
    sensitiveKeys: [...secrets.keys()],
    sensitiveValues: [...secrets.values()].filter((v) => v.length > 0),
    natsAuth,
  };
}
