// Libraries of Segment's runtime, each under the global name Segment gives it, each evaluated only when a
// function first reads its global (see sandbox/isolate/libraries.js), so a function that uses none pays
// nothing for them in start-up time or memory. lodash is its own minified build, evaluated as the CommonJS
// module it is in Node; the others are bundled (esbuild, at build time) into one script each. Node
// built-ins they require are the sandbox's own (sandbox/libraries/*.js); zlib is the host's
// (sandbox/host-zlib.ts).

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/**
 * lodash as Node loads it: with `module` and `exports` in scope its UMD build exports itself and takes
 * the global Buffer (the sandbox's), so `_.isBuffer`, `_.cloneDeep` and `_.isEqual` know Buffers; as a
 * plain script it would find no Buffer and take every Buffer for a plain Uint8Array.
 */
function lodashSource(): string {
  const lodash = readFileSync(require.resolve('lodash/lodash.min.js'), 'utf8');
  return `(function () {\nvar module = { exports: {} }, exports = module.exports;\n${lodash}\nreturn module.exports;\n})`;
}

/** Segment's global name → the module and the export of it that the global is. */
export const LAZY_LIBRARIES = {
  jsonwebtoken: "module.exports = require('jsonwebtoken');",
  moment: "module.exports = require('moment-timezone');",
  xml: "module.exports = require('xml');",
  xml2js: "module.exports = require('xml2js');",
  uuidv5: "module.exports = require('uuid').v5;",
  libphonenumberjslib: "module.exports = require('libphonenumber-js');",
  fetchretrylib: "module.exports = require('fetch-retry');",
} as const;

export type LazyLibrary = keyof typeof LAZY_LIBRARIES;

/** What each bundle's IIFE assigns, inside the function that wraps it. */
const GLOBAL_NAME = '__dfnLibrary';

/** The sandbox's stand-ins for Node built-ins, next to this module in the sources. */
const SHIMS = fileURLToPath(new URL('./libraries/', import.meta.url));

/** Node built-ins the libraries require, and the sandbox module standing in for each. */
const BUILTINS = ['crypto', 'buffer', 'stream', 'util', 'timers'] as const;

/**
 * Bundles one library into a script that evaluates to a function of the sandbox's modules
 * (`{ crypto, Buffer, setTimeout, clearTimeout, nodeVersion }`) returning the library's exports.
 * keepNames: the class and function names users see (errors, `constructor.name`) stay the library's.
 */
export function bundleLibrary(name: LazyLibrary, shimsDir = SHIMS): string {
  // esbuild is a build-time tool: required lazily, so running from dist/ never needs it.
  const esbuild = require('esbuild') as typeof import('esbuild');
  const shims = `${resolvePath(shimsDir)}/`;
  const alias: Record<string, string> = {};
  for (const builtin of BUILTINS) alias[builtin] = `${shims}${builtin}.cjs`;
  // safe-buffer is Node's buffer module on any Node that has Buffer.from: the sandbox's, here too.
  alias['safe-buffer'] = `${shims}buffer.cjs`;
  const result = esbuild.buildSync({
    stdin: { contents: LAZY_LIBRARIES[name], resolveDir: shims, sourcefile: `${name}.js`, loader: 'js' },
    bundle: true,
    format: 'iife',
    globalName: GLOBAL_NAME,
    platform: 'browser',
    target: 'es2022',
    alias,
    inject: [`${shims}process.js`],
    keepNames: true,
    minify: true,
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const code = result.outputFiles[0]!.text;
  return `(function (__dfnModules) {\n'use strict';\n${code}\nreturn ${GLOBAL_NAME};\n})`;
}

const sources = new Map<string, string>();

/** A lazy library's bundle: built next to this module (dist/sandbox/libraries/), or bundled now. */
function bundledLibrary(name: LazyLibrary): string {
  const built = new URL(`./libraries/${name}.bundle.js`, import.meta.url);
  return existsSync(built) ? readFileSync(built, 'utf8') : bundleLibrary(name);
}

/** A library's source for the isolate (lodash as CommonJS, the others bundled), made once. */
export function librarySource(name: string): string | undefined {
  if (name !== '_' && !Object.hasOwn(LAZY_LIBRARIES, name)) return undefined;
  let source = sources.get(name);
  if (source === undefined) {
    source = name === '_' ? lodashSource() : bundledLibrary(name as LazyLibrary);
    sources.set(name, source);
  }
  return source;
}
