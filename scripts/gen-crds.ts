// Writes the CustomResourceDefinitions generated from api/ (api/crd/definitions.ts) as YAML files.
//   npm run gen:crds                  → crds/
//   npm run gen:crds -- --out <dir>   → another directory (a Helm chart's crds/, for one)
// test/api/crds.test.ts fails while the checked-in files differ from what this writes.

import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { crdFiles } from '../api/crd/definitions.js';

const { values } = parseArgs({ options: { out: { type: 'string', default: 'crds' } } });
const out = resolve(values.out!);
await mkdir(out, { recursive: true });
const files = crdFiles();
// A CRD that no longer exists must not linger in the directory.
for (const name of await readdir(out)) {
  if (name.endsWith('.yaml') && !files.some((f) => f.name === name)) await rm(join(out, name));
}
for (const file of files) await writeFile(join(out, file.name), file.content);
console.log(`wrote ${files.map((f) => f.name).join(', ')} to ${out}`);
