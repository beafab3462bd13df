// Built-ins captured when the prelude is evaluated, before any user code runs, so a function that
// overwrites JSON, Object, Array or Promise methods breaks only its own code, never the sandbox's.

export const jsonParse = JSON.parse;
export const jsonStringify = JSON.stringify;
export const dateNow = Date.now;
export const objectKeys = Object.keys;
export const objectFreeze = Object.freeze;
export const defineProperty = Object.defineProperty;
export const isArray = Array.isArray;
export const hasOwn = Object.hasOwn;
export const PromiseCtor = Promise;
export const MapCtor = Map;
export const StringCtor = String;
export const NumberCtor = Number;
export const fromCharCode = String.fromCharCode;
export const Uint8ArrayCtor = Uint8Array;

const promiseThen = Promise.prototype.then;

/** `promise.then(onFulfilled, onRejected)` with the original `then`, whatever user code did to it. */
export const whenSettled = (promise, onFulfilled, onRejected) =>
  promiseThen.call(promise, onFulfilled, onRejected);
