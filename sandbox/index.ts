// Public entry point of the sandbox: load a function's source into an isolate and invoke it.

export { Redactor } from './redact.js';
export { loadFunction } from './sandbox.js';
export * from './types.js';
