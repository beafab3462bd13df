// Bundles the in-isolate modules (sandbox/isolate/) into dist/sandbox/prelude.bundle.js, and each of
// Segment's lazily evaluated libraries into dist/sandbox/libraries/<global>.bundle.js, with the same
// functions the sandbox uses when it runs from sources. Runs after tsc (npm run build).
import { mkdirSync, writeFileSync } from 'node:fs';
import { bundleLibrary, LAZY_LIBRARIES } from '../dist/sandbox/libraries.js';
import { bundlePrelude } from '../dist/sandbox/prelude.js';

writeFileSync('dist/sandbox/prelude.bundle.js', bundlePrelude('sandbox/isolate/prelude.js'));
mkdirSync('dist/sandbox/libraries', { recursive: true });
for (const name of Object.keys(LAZY_LIBRARIES)) {
  writeFileSync(`dist/sandbox/libraries/${name}.bundle.js`, bundleLibrary(name, 'sandbox/libraries/'));
}
