// The host's capabilities, handed to the prelude once when the isolate is built. They live in this
// module's scope, never on globalThis, so user code cannot reach them.

import { defineProperty, frozenOptions, jsonParse, TypeErrorCtor } from './intrinsics.js';
import { current } from './invocation.js';

// hostFetch: ivm.Reference (invocationId, request) → Promise<response | {error}>
// hostSleep: ivm.Reference (invocationId, ms, timerId) → Promise<boolean>: true once elapsed, false when
//   cancelled (its invocation ended, or clearTimeout: ms null cancels timerId)
// hostDeliver: ivm.Reference (callId, resultsJson): where the dispatcher sends a micro-batch's results
// hostUrl, hostCrypto, hostZlib: synchronous callbacks (op, ...args) → result | {error}; hostCrypto's
//   first argument is the invocation (its unfinished hashes and ciphers end with it)
// hostSubtle: ivm.Reference (op, args) → Promise<result | {error}>: crypto.subtle
// hostLibrary: synchronous callback (name) → the bundled source of a library (sandbox/libraries.ts)
export const host = {
  fetch: undefined,
  sleep: undefined,
  deliver: undefined,
  url: undefined,
  crypto: undefined,
  subtle: undefined,
  zlib: undefined,
  library: undefined,
  /** limits, bounds (sandbox/bounds.ts) and settings: { logBytes, cacheEntries, cacheBytes, bounds, settings (JSON), handlerForType, nodeVersion } */
  config: undefined,
};

export function connect(
  hostFetch,
  hostSleep,
  hostDeliver,
  hostUrl,
  hostCrypto,
  hostSubtle,
  hostZlib,
  hostLibrary,
  configJson,
) {
  host.fetch = hostFetch;
  host.sleep = hostSleep;
  host.deliver = hostDeliver;
  host.url = hostUrl;
  host.crypto = hostCrypto;
  host.subtle = hostSubtle;
  host.zlib = hostZlib;
  host.library = hostLibrary;
  host.config = jsonParse(configJson);
}

// Frozen, without prototypes: see frozenOptions.
export const asyncCall = frozenOptions({ arguments: { copy: true }, result: { promise: true, copy: true } });
export const copyArguments = frozenOptions({ arguments: { copy: true } });

/** Resolves true once `ms` elapsed, false when the host cancelled it (its invocation ended). */
export const sleep = (ms, invocation = current, timerId = 0) =>
  host.sleep.apply(undefined, [invocation, ms, timerId], asyncCall);

/** Cancels the host timer of a setTimeout: its sleep resolves false. */
export const cancelSleep = (timerId) => host.sleep.applyIgnored(undefined, [0, null, timerId], copyArguments);

/** A synchronous host callback's answer: `{error}` becomes a TypeError in user code. */
export function hostResult(value) {
  if (value && typeof value === 'object' && typeof value.error === 'string') {
    const err = new TypeErrorCtor(value.error);
    // Node's coded fields where the host gives them (URL: code, input, base), as own data properties.
    // Defined, not assigned: a setter user code put on TypeError.prototype must not see them.
    for (const key of ['code', 'input', 'base']) {
      if (value[key] !== undefined)
        defineProperty(err, key, { value: value[key], writable: true, enumerable: true, configurable: true });
    }
    throw err;
  }
  return value;
}
