// Writes the CustomResourceDefinitions generated from api/ (api/crd/definitions.ts) as YAML files, into every
// place that ships them: the top-level crds/ (kubectl apply -f crds/) and the Helm chart's crds/.
//   npm run gen:crds                  → crds/ and charts/dfn/crds/
//   npm run gen:crds -- --out <dir>   → that directory only
// test/api/crds.test.ts fails while either checked-in copy differs from what this writes.

import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { crdFiles } from '../api/crd/definitions.js';

const DEFAULT_OUTPUTS = ['crds', 'charts/dfn/crds'];

const { values } = parseArgs({ options: { out: { type: 'string' } } });
const files = crdFiles();
for (const dir of values.out ? [values.out] : DEFAULT_OUTPUTS) {
  const out = resolve(dir);
  await mkdir(out, { recursive: true });
  // A CRD that no longer exists must not linger in the directory.
  for (const name of await readdir(out)) {
    if (name.endsWith('.yaml') && !files.some((f) => f.name === name)) await rm(join(out, name));
  }
  for (const file of files) await writeFile(join(out, file.name), file.content);
  console.log(`wrote ${files.map((f) => f.name).join(', ')} to ${out}`);
}
