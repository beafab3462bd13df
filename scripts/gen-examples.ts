// Writes examples/<name>/code.yaml (the ConfigMap holding that example's function.js) for every example.
//   npm run gen:examples

import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CODE_FILE, codeConfigMapFile, exampleNames } from './example-code.js';

const dir = resolve('examples');
for (const example of exampleNames(dir)) {
  await writeFile(join(dir, example, CODE_FILE), codeConfigMapFile(dir, example));
  console.log(`wrote examples/${example}/${CODE_FILE}`);
}
