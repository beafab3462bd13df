// The examples as the tests read them: each folder's function, manifests (by kind) and sample inputs.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { DestinationFunctionSpecInput } from '../../api/destination-function.js';
import type { FunctionInstanceSpecInput } from '../../api/function-instance.js';
import { exampleNames } from '../../scripts/example-code.js';
import { repoRoot } from '../helpers/dfn.js';

export const EXAMPLES_DIR = join(repoRoot, 'examples');

export type Manifest = { apiVersion?: string; kind?: string; metadata?: { name?: string }; [k: string]: any };

export interface Example {
  name: string;
  dir: string;
  functionFile: string;
  /** The files at the folder's top level that `kubectl apply -f <folder>` reads, parsed. */
  manifests: { file: string; objects: Manifest[] }[];
  fn: { metadata: { name: string }; spec: DestinationFunctionSpecInput };
  instances: { metadata: { name: string }; spec: FunctionInstanceSpecInput }[];
  secrets: { metadata: { name: string }; stringData: Record<string, string> }[];
  settingsFile: string;
  settings: Record<string, unknown>;
  /** The sample event (an object) or batch (an array). */
  eventFile: string;
  event: unknown;
}

/** What kubectl apply -f <dir> reads: files ending in .json, .yaml or .yml, not recursing. */
export const KUBECTL_EXTENSIONS = /\.(json|ya?ml)$/;

export function loadExample(name: string): Example {
  const dir = join(EXAMPLES_DIR, name);
  const manifests = readdirSync(dir)
    .filter((f) => KUBECTL_EXTENSIONS.test(f))
    .sort()
    .map((file) => ({
      file,
      objects: parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => d.toJS() as Manifest),
    }));
  const all = manifests.flatMap((m) => m.objects);
  const ofKind = (kind: string) => all.filter((o) => o.kind === kind);
  const sample = join(dir, 'sample');
  const eventName = readdirSync(sample).find((f) => f.endsWith('.json') && f !== 'settings.json');
  if (!eventName) throw new Error(`examples/${name}/sample holds no event`);
  const [fn] = ofKind('DestinationFunction');
  if (!fn) throw new Error(`examples/${name} has no DestinationFunction`);
  return {
    name,
    dir,
    functionFile: join(dir, 'function.js'),
    manifests,
    fn: fn as Example['fn'],
    instances: ofKind('FunctionInstance') as Example['instances'],
    secrets: ofKind('Secret') as Example['secrets'],
    settingsFile: join(sample, 'settings.json'),
    settings: JSON.parse(readFileSync(join(sample, 'settings.json'), 'utf8')),
    eventFile: join(sample, eventName),
    event: JSON.parse(readFileSync(join(sample, eventName), 'utf8')),
  };
}

export const examples = (): Example[] => exampleNames(EXAMPLES_DIR).map(loadExample);

/** The handlers a function file defines at top level (`async function onTrack(...)`). */
export function definedHandlers(file: string): string[] {
  const code = readFileSync(file, 'utf8');
  return [...code.matchAll(/^async function (on[A-Z]\w*)\s*\(/gm)].map((m) => m[1]!).sort();
}

/** The settings a function marks sensitive. */
export const sensitiveSettings = (ex: Example) =>
  (ex.fn.spec.settings ?? []).filter((s) => s.sensitive).map((s) => s.name);
