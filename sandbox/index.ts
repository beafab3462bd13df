// Public entry point of the sandbox: load a function's source into an isolate and invoke it, in this
// process (loadFunction) or in a supervised sandbox process that may die without taking its caller along.

export { BOUNDS } from './bounds.js';
export { Redactor } from './redact.js';
export { loadFunction } from './sandbox.js';
export { loadSupervisedFunction, processLimits, type SupervisorHooks } from './supervisor.js';
export * from './types.js';
