// The code ConfigMap of each example: examples/<name>/code.yaml holds examples/<name>/function.js as the
// ConfigMap <name>-code, so `kubectl apply -f examples/<name>/` deploys the function as written.
// scripts/gen-examples.ts writes them; test/examples/manifests.test.ts fails while one is stale.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** The key of the ConfigMap holding the code; a DestinationFunction's codeFrom names it. */
export const CODE_KEY = 'function.js';
export const CODE_FILE = 'code.yaml';

export const codeConfigMapName = (example: string) => `${example}-code`;

/** The example folders: those under examples/ holding a function.js. */
export function exampleNames(examplesDir: string): string[] {
  return readdirSync(examplesDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && readdirSync(join(examplesDir, e.name)).includes(CODE_KEY))
    .map((e) => e.name)
    .sort();
}

/** What examples/<name>/code.yaml must contain. */
export function codeConfigMapFile(examplesDir: string, example: string): string {
  const code = readFileSync(join(examplesDir, example, CODE_KEY), 'utf8');
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: codeConfigMapName(example), labels: { 'dfn.dev/example': example } },
    data: { [CODE_KEY]: code },
  };
  return (
    `# Generated from ${CODE_KEY} by \`npm run gen:examples\`: edit ${CODE_KEY}, then regenerate (or\n` +
    `#   kubectl create configmap ${codeConfigMapName(example)} --from-file=${CODE_KEY} --dry-run=client -o yaml | kubectl apply -f -).\n` +
    stringify(configMap, { lineWidth: 0, blockQuote: 'literal' })
  );
}
