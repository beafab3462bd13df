// The in-isolate side of the sandbox: entry of the modules in this folder, which the build bundles into
// one script (sandbox/prelude.ts) evaluated in every isolate before the function's code. Plain
// JavaScript on purpose: it runs in V8 inside the isolate, not in Node.

import { takeLoadLogs } from './console.js';
import { dispatch, expire, setHandlers } from './dispatcher.js';
import { settleFetches } from './fetch.js';
import { installGlobals } from './globals.js';
import { connect } from './host.js';

/** Called once by the host with its capabilities; returns what the host calls afterwards. */
export function prelude(...capabilities) {
  // The host's capabilities and config, in the order host.js's connect() names them.
  connect(...capabilities);
  installGlobals();
  return { dispatch, expire, setHandlers, takeLoadLogs, settleFetches };
}
