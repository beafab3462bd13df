// Bundles the in-isolate modules (sandbox/isolate/) into dist/sandbox/prelude.bundle.js, with the same
// function the sandbox uses when it runs from sources. Runs after tsc (npm run build).
import { writeFileSync } from 'node:fs';
import { bundlePrelude } from '../dist/sandbox/prelude.js';

writeFileSync('dist/sandbox/prelude.bundle.js', bundlePrelude('sandbox/isolate/prelude.js'));
