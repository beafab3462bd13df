// The prelude: the in-isolate modules (sandbox/isolate/*.js) bundled into the one script evaluated in
// every isolate. The build writes it to dist/sandbox/prelude.bundle.js; from sources it is bundled on first use.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What the bundle evaluates to inside the isolate: the entry module's `prelude` function. */
const GLOBAL_NAME = '__dfnPrelude';

/**
 * Bundles the in-isolate modules from their entry (sandbox/isolate/prelude.js) with esbuild. The IIFE's
 * global is declared inside a wrapping function, so nothing lands on the isolate's globalThis.
 */
export function bundlePrelude(entryPath: string): string {
  // esbuild is a build-time tool: required lazily, so running from dist/ never needs it.
  const esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
  const result = esbuild.buildSync({
    entryPoints: [entryPath],
    bundle: true,
    format: 'iife',
    globalName: GLOBAL_NAME,
    platform: 'neutral',
    target: 'es2022',
    // Whitespace and comments out (identifiers kept): the isolate parses this script at every start.
    minifyWhitespace: true,
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const code = result.outputFiles[0]!.text;
  return `(function () {\n'use strict';\n${code}\nreturn ${GLOBAL_NAME}.prelude;\n})()\n`;
}

let cached: string | undefined;

/** The prelude's source: the built bundle next to this module, or bundled from the sources. */
export function preludeSource(): string {
  if (cached === undefined) {
    const built = new URL('./prelude.bundle.js', import.meta.url);
    cached = existsSync(built)
      ? readFileSync(built, 'utf8')
      : bundlePrelude(fileURLToPath(new URL('./isolate/prelude.js', import.meta.url)));
  }
  return cached;
}
