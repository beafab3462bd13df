// lodash and Segment's default dependencies under their global names, each made on first use: the global is an
// accessor until a function reads it, which evaluates the library's bundle (sandbox/libraries.ts; its
// source comes from the host then) and puts the result in its place as a plain writable property. A
// function that reads none of them never evaluates any.

import { nodeBuffer } from './buffer.js';
import { crypto } from './crypto.js';
import { host } from './host.js';
import { ErrorCtor, indirectEval, objectFreeze } from './intrinsics.js';
import { clearTimeout, setTimeout } from './timers.js';
import { makeZlib } from './zlib.js';

export const LAZY_GLOBALS = [
  '_',
  'jsonwebtoken',
  'moment',
  'xml',
  'xml2js',
  'uuidv5',
  'libphonenumberjslib',
  'fetchretrylib',
  'zlib',
];

let modules;

/** Evaluates a library for its global (globals.js installs each as a global made on first use). */
export function evaluateLibrary(name) {
  if (name === 'zlib') return makeZlib();
  const source = host.library(name);
  if (typeof source !== 'string') throw new ErrorCtor(`the library ${name} is not available`);
  modules ??= objectFreeze({
    crypto,
    Buffer: nodeBuffer(),
    setTimeout,
    clearTimeout,
    nodeVersion: host.config.nodeVersion,
  });
  return indirectEval(source)(modules);
}
