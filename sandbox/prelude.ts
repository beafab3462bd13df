// The prelude: the in-isolate modules (sandbox/isolate/*.js) and the `buffer` package bundled into the
// one script evaluated in every isolate. The build writes it to dist/sandbox/prelude.bundle.js; from sources it is bundled on first use.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What the bundle evaluates to inside the isolate: the entry module's `prelude` function. */
const GLOBAL_NAME = '__dfnPrelude';
/**
 * A function in the prelude's scope that evaluates the `buffer` package and returns its exports
 * (sandbox/isolate/buffer.js calls it once). Its three CommonJS files are wrapped here rather than bundled by esbuild, which renames the
 * package's `function Buffer` to Buffer2 (even bundled alone), and user code sees that name in
 * `buf.constructor.name`, `String(Buffer)` and stack traces.
 */
const BUFFER_PACKAGE = '__dfnBufferPackage';

type Esbuild = typeof import('esbuild');

/** The `buffer` package and its two dependencies as CommonJS modules behind a minimal `require`. */
function wrapBufferPackage(esbuild: Esbuild): string {
  // 'buffer/' resolves the package, where 'buffer' would be Node's own module.
  const main = createRequire(import.meta.url).resolve('buffer/');
  const fromPackage = createRequire(main);
  const files = {
    buffer: main,
    'base64-js': fromPackage.resolve('base64-js'),
    ieee754: fromPackage.resolve('ieee754'),
  };
  const modules = Object.entries(files)
    .map(
      ([name, file]) =>
        `${JSON.stringify(name)}: function (module, exports, require) {\n${esbuild.transformSync(readFileSync(file, 'utf8'), TRANSFORM).code}\n}`,
    )
    .join(',\n');
  return `function ${BUFFER_PACKAGE}() {
const modules = {\n${modules}\n};
const loaded = {};
function require(name) {
  if (!loaded[name]) {
    const module = { exports: {} };
    loaded[name] = module;
    modules[name](module, module.exports, require);
  }
  return loaded[name].exports;
}
return require('buffer');
}`;
}

/** Printed again as esbuild prints, so `String(Buffer)` reads as Node's (`function Buffer(arg, …`). */
const TRANSFORM = { target: 'es2022', legalComments: 'none' } as const;

const COMMON = {
  bundle: true,
  format: 'iife',
  platform: 'neutral',
  target: 'es2022',
  write: false,
  legalComments: 'none',
  logLevel: 'silent',
} as const;

/**
 * Bundles the in-isolate modules from their entry (sandbox/isolate/prelude.js) with esbuild. The IIFEs'
 * globals are declared inside a wrapping function, so nothing lands on the isolate's globalThis.
 */
export function bundlePrelude(entryPath: string): string {
  // esbuild is a build-time tool: required lazily, so running from dist/ never needs it.
  const esbuild = createRequire(import.meta.url)('esbuild') as Esbuild;
  const result = esbuild.buildSync({
    ...COMMON,
    entryPoints: [entryPath],
    globalName: GLOBAL_NAME,
    // Whitespace and comments out (identifiers kept): the isolate parses this script at every start.
    minifyWhitespace: true,
  });
  const code = result.outputFiles[0]!.text;
  return `(function () {\n'use strict';\n${wrapBufferPackage(esbuild)}\n${code}\nreturn ${GLOBAL_NAME}.prelude;\n})()\n`;
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
