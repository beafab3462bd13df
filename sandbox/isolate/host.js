// The host's capabilities, handed to the prelude once when the isolate is built. They live in this
// module's scope, never on globalThis, so user code cannot reach them.

import { jsonParse } from './intrinsics.js';

// hostFetch: ivm.Reference (invocationId, request) → Promise<response | {error}>
// hostSleep: ivm.Reference (ms) → Promise<void>
// hostDeliver: ivm.Reference (callId, resultsJson): where the dispatcher sends a micro-batch's results
// hostUrl, hostCrypto: synchronous callbacks (op, ...args) → result | {error}
export const host = {
  fetch: undefined,
  sleep: undefined,
  deliver: undefined,
  url: undefined,
  crypto: undefined,
  /** limits and settings: { logBytes, cacheEntries, cacheBytes, settings (JSON), handlerForType } */
  config: undefined,
};

export function connect(hostFetch, hostSleep, hostDeliver, hostUrl, hostCrypto, configJson) {
  host.fetch = hostFetch;
  host.sleep = hostSleep;
  host.deliver = hostDeliver;
  host.url = hostUrl;
  host.crypto = hostCrypto;
  host.config = jsonParse(configJson);
}

export const asyncCall = { arguments: { copy: true }, result: { promise: true, copy: true } };

export const sleep = (ms) => host.sleep.apply(undefined, [ms], asyncCall);

/** A synchronous host callback's answer: `{error}` becomes a TypeError in user code. */
export function hostResult(value) {
  if (value && typeof value === 'object' && typeof value.error === 'string') throw new TypeError(value.error);
  return value;
}
