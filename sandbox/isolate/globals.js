// The globals of user code: exactly these, and V8's own built-ins (README.md lists them). Installed
// as writable, non-enumerable properties, as Node's own globals are. WebAssembly is removed: its memory
// lives outside the isolate's heap limit (a grown Memory held gigabytes under a 128 MiB limit), and
// destination functions have no use for it.

import { nodeBuffer } from './buffer.js';
import { atob, btoa, TextEncoder } from './bytes.js';
import { cache } from './cache.js';
import { console } from './console.js';
import { crypto } from './crypto.js';
import { EventNotSupported, InvalidEventPayload, RetryError, ValidationError } from './errors.js';
import { fetch, Request, Response } from './fetch.js';
import { Headers } from './headers.js';
import { defineProperty, objectKeys } from './intrinsics.js';
import { evaluateLibrary, LAZY_GLOBALS } from './libraries.js';
import { TextDecoder } from './text-decoder.js';
import { clearInterval, clearTimeout, setInterval, setTimeout } from './timers.js';
import { URL, URLSearchParams } from './url.js';

export function installGlobals() {
  delete globalThis.WebAssembly;
  const globals = {
    console,
    fetch,
    Headers,
    Request,
    Response,
    URL,
    URLSearchParams,
    TextEncoder,
    TextDecoder,
    btoa,
    atob,
    crypto,
    cache,
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    EventNotSupported,
    InvalidEventPayload,
    ValidationError,
    RetryError,
  };
  for (const name of objectKeys(globals)) defineGlobal(name, globals[name]);
  lazyGlobal('Buffer', nodeBuffer);
  // lodash and Segment's other default dependencies (jsonwebtoken, moment, xml, xml2js, zlib, …): a function that reads
  // none of them never evaluates any; assigning one (a function's own `moment`) evaluates nothing either.
  for (const name of LAZY_GLOBALS) lazyGlobal(name, () => evaluateLibrary(name));
}

function defineGlobal(name, value) {
  defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

/**
 * A global made on first use (Buffer and the libraries: most functions never touch them, and they cost
 * start-up and heap).
 * The first read or write turns it into the plain data property Node has.
 */
function lazyGlobal(name, make) {
  let making = false;
  defineProperty(globalThis, name, {
    get() {
      // A library reading its own global as it loads (lodash keeps `root._` for noConflict) finds none.
      if (making) return undefined;
      making = true;
      let value;
      try {
        value = make();
      } finally {
        making = false;
      }
      defineGlobal(name, value);
      return value;
    },
    set(value) {
      defineGlobal(name, value);
    },
    configurable: true,
    enumerable: false,
  });
}
