// Segment's default dependencies under their global names, each made on first use: the global is an
// accessor until a function reads it, which evaluates the library's bundle (sandbox/libraries.ts; its
// source comes from the host then) and puts the result in its place as a plain writable property. A
// function that reads none of them never evaluates any.

import { Buffer } from './buffer.js';
import { crypto } from './crypto.js';
import { host } from './host.js';
import { defineProperty, ErrorCtor, indirectEval, objectFreeze } from './intrinsics.js';
import { clearTimeout, setTimeout } from './timers.js';
import { makeZlib } from './zlib.js';

export const LAZY_GLOBALS = [
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

function evaluate(name) {
  if (name === 'zlib') return makeZlib();
  const source = host.library(name);
  if (typeof source !== 'string') throw new ErrorCtor(`the library ${name} is not available`);
  modules ??= objectFreeze({
    crypto,
    Buffer,
    setTimeout,
    clearTimeout,
    nodeVersion: host.config.nodeVersion,
  });
  return indirectEval(source)(modules);
}

function settle(name, value) {
  defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

export function installLazyGlobals() {
  for (const name of LAZY_GLOBALS) {
    defineProperty(globalThis, name, {
      get() {
        const value = evaluate(name);
        settle(name, value);
        return value;
      },
      // Assigning the global (a function's own `moment`) replaces it without evaluating the library.
      set(value) {
        settle(name, value);
      },
      configurable: true,
      enumerable: false,
    });
  }
}
