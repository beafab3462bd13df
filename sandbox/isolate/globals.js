// The globals of user code: exactly these, and V8's own built-ins (README.md lists them). Installed
// as writable, non-enumerable properties, as Node's own globals are. WebAssembly is removed: its memory
// lives outside the isolate's heap limit (a grown Memory held gigabytes under a 128 MiB limit), and
// destination functions have no use for it.

import { Buffer } from './buffer.js';
import { atob, btoa, TextDecoder, TextEncoder } from './bytes.js';
import { cache } from './cache.js';
import { console } from './console.js';
import { crypto } from './crypto.js';
import { EventNotSupported, InvalidEventPayload, RetryError, ValidationError } from './errors.js';
import { fetch, Request, Response } from './fetch.js';
import { Headers } from './headers.js';
import { defineProperty, objectKeys } from './intrinsics.js';
import { installLazyGlobals } from './libraries.js';
import { clearTimeout, setTimeout } from './timers.js';
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
    Buffer,
    TextEncoder,
    TextDecoder,
    btoa,
    atob,
    crypto,
    cache,
    setTimeout,
    clearTimeout,
    // lodash, evaluated in the isolate just before the prelude (sandbox/libraries.ts)
    _: globalThis._,
    EventNotSupported,
    InvalidEventPayload,
    ValidationError,
    RetryError,
  };
  for (const name of objectKeys(globals)) {
    defineProperty(globalThis, name, {
      value: globals[name],
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
  // Segment's other default dependencies (jsonwebtoken, moment, xml, xml2js, zlib, …), made on first use.
  installLazyGlobals();
}
