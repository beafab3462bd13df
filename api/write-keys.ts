// The gateway's write keys: a YAML mapping of write key to source name, mounted from a Secret. The format
// and its parser are defined once here: the gateway authenticates with them, the operator learns the sources.

import { parse } from 'yaml';
import { subjectToken } from './jetstream.js';

/** The file says what is wrong with it; the gateway refuses to start on one and keeps the old keys on reload. */
export class WriteKeysFileError extends Error {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`write-keys file ${path}: ${problem}`);
    this.name = 'WriteKeysFileError';
  }
}

export const WRITE_KEYS_FORMAT = `A YAML (or JSON) mapping of write key to source name, for example:

  # writeKey: source
  3fa85f64wk1: web
  9c1e7d22wk2: backend
  # two keys for one source: rotate by adding the new key, then removing the old one
  77b0aa31wk3: backend

Source names use letters, digits, '-', '_' and '.'; they name the JetStream subject
<prefix>.events.<source>.<type> that FunctionInstances consume.`;

/** Parses the file's text into writeKey → source. Exported for tests and `--help` examples. */
export function parseWriteKeys(text: string, path = '<write-keys>'): Map<string, string> {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new WriteKeysFileError(path, `not valid YAML or JSON (${(err as Error).message.split('\n')[0]})`);
  }
  const keys = new Map<string, string>();
  if (doc === null || doc === undefined) return keys;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new WriteKeysFileError(path, 'must be a mapping of write key to source name');
  }
  for (const [key, source] of Object.entries(doc as Record<string, unknown>)) {
    if (key.trim() === '' || key !== key.trim()) {
      throw new WriteKeysFileError(
        path,
        `write key ${JSON.stringify(key)} is empty or has surrounding spaces`,
      );
    }
    if (key.includes(':')) {
      // A Basic-auth username cannot contain ':', so such a key could never authenticate.
      throw new WriteKeysFileError(path, `write key ${JSON.stringify(key)} contains ':'`);
    }
    if (typeof source !== 'string' || source === '') {
      throw new WriteKeysFileError(path, `the source of a write key must be a non-empty string (${key})`);
    }
    try {
      subjectToken(source);
    } catch (err) {
      throw new WriteKeysFileError(path, (err as Error).message);
    }
    keys.set(key, source);
  }
  return keys;
}
