// Libraries evaluated in every isolate before the prelude, each under the global name Segment gives it.
// Today lodash only; Segment's other default dependencies join this list.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface IsolateLibrary {
  /** The global user code knows it by. */
  global: string;
  /** Shown in stack traces. */
  filename: string;
  source: string;
}

const resolve = createRequire(import.meta.url).resolve;

export const LIBRARIES: readonly IsolateLibrary[] = [
  // lodash's UMD build assigns `_` on the global object when it finds no module system.
  { global: '_', filename: 'lodash.js', source: readFileSync(resolve('lodash/lodash.min.js'), 'utf8') },
];
