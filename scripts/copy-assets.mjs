// Copies the non-TypeScript runtime assets (the in-isolate prelude) next to the compiled code.
import { cpSync } from 'node:fs';

cpSync('runner/sandbox/prelude.js', 'dist/runner/sandbox/prelude.js');
