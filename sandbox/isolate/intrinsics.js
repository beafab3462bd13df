// Built-ins captured when the prelude is evaluated, before any user code runs, so a function that
// overwrites JSON, Object, Array, Map or Promise methods breaks only its own code, never the sandbox's.
// Methods are captured too and called through Reflect.apply: `map.get(k)` would look `get` up at call time.

const reflectApply = Reflect.apply;
export const apply = reflectApply;
export const getPrototypeOf = Object.getPrototypeOf;
const functionCall = Function.prototype.call;
const functionBind = Function.prototype.bind;
/**
 * `fn` as a function of (self, ...args): Function.prototype.call bound to it, as Node's primordials do.
 * Bound now, so a later change to `call` or `bind` does not reach it, and it needs no arguments array
 * per call (a rest parameter and Reflect.apply allocated one for every Map lookup).
 */
const uncurry = (fn) => reflectApply(functionBind, functionCall, [fn]);

export const jsonParse = JSON.parse;
export const jsonStringify = JSON.stringify;
export const dateNow = Date.now;
export const objectKeys = Object.keys;
export const objectFreeze = Object.freeze;
export const objectCreate = Object.create;
export const defineProperty = Object.defineProperty;
export const isArray = Array.isArray;
export const isView = ArrayBuffer.isView;
export const hasOwn = Object.hasOwn;
export const PromiseCtor = Promise;
export const MapCtor = Map;
export const WeakMapCtor = WeakMap;
export const ProxyCtor = Proxy;
export const StringCtor = String;
export const NumberCtor = Number;
export const isInteger = Number.isInteger;
export const fromCharCode = String.fromCharCode;
export const Uint8ArrayCtor = Uint8Array;
export const ErrorCtor = Error;
export const RangeErrorCtor = RangeError;
export const TypeErrorCtor = TypeError;
export const escapeLatin1 = escape;
export const decodeUriComponent = decodeURIComponent;
/**
 * Evaluates a library's bundle in the global scope (sandbox/isolate/libraries.js): a global's getter is
 * synchronous, and the host cannot run a script in the isolate from inside a synchronous callback.
 */
// biome-ignore lint/security/noGlobalEval: the source is the sandbox's own bundle, from the host
export const indirectEval = eval; // called by another name: an indirect eval, in the global scope

/**
 * Gives a class the name user code sees (`constructor.name`, an instance printed): esbuild bundles a class
 * that refers to itself as `var Headers = class _Headers`, whose name would be `_Headers`.
 */
export function named(cls, name) {
  defineProperty(cls, 'name', { value: name, writable: false, enumerable: false, configurable: true });
  return cls;
}

export const mapGet = uncurry(Map.prototype.get);
export const mapSet = uncurry(Map.prototype.set);
export const mapHas = uncurry(Map.prototype.has);
export const mapDelete = uncurry(Map.prototype.delete);
export const mapClear = uncurry(Map.prototype.clear);
const mapSizeGetter = Object.getOwnPropertyDescriptor(Map.prototype, 'size').get;
export const mapSize = (map) => reflectApply(mapSizeGetter, map, []);
export const weakMapGet = uncurry(WeakMap.prototype.get);
export const weakMapSet = uncurry(WeakMap.prototype.set);
export const stringSlice = uncurry(String.prototype.slice);
export const charCodeAt = uncurry(String.prototype.charCodeAt);
export const regexpTest = uncurry(RegExp.prototype.test);
export const stringToWellFormed = uncurry(String.prototype.toWellFormed);
const typedArrayLength = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  'length',
).get;
const typedArrayByteLength = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  'byteLength',
).get;
export const byteLengthOf = (view) => reflectApply(typedArrayByteLength, view, []);
const dataViewByteLength = Object.getOwnPropertyDescriptor(DataView.prototype, 'byteLength').get;
const dataViewByteOffset = Object.getOwnPropertyDescriptor(DataView.prototype, 'byteOffset').get;
const dataViewBuffer = Object.getOwnPropertyDescriptor(DataView.prototype, 'buffer').get;
const typedArrayByteOffset = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  'byteOffset',
).get;
const typedArrayBuffer = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  'buffer',
).get;
const typedArraySet = Object.getPrototypeOf(Uint8Array.prototype).set;
const isDataView = (view) => view instanceof DataView;

/** The byte length of any ArrayBuffer view (typed array or DataView), read from the engine, not the object. */
export const viewByteLength = (view) =>
  reflectApply(isDataView(view) ? dataViewByteLength : typedArrayByteLength, view, []);

/**
 * A fresh copy of exactly the bytes a view covers. isolated-vm copies a view's whole backing buffer when
 * it crosses to the host, so a 16-byte view of a 100 MiB buffer would cost the host 100 MiB.
 */
export function viewCopy(view) {
  const dv = isDataView(view);
  const buffer = reflectApply(dv ? dataViewBuffer : typedArrayBuffer, view, []);
  const offset = reflectApply(dv ? dataViewByteOffset : typedArrayByteOffset, view, []);
  const length = viewByteLength(view);
  const out = new Uint8Array(length);
  reflectApply(typedArraySet, out, [new Uint8Array(buffer, offset, length)]);
  return out;
}
export const lengthOf = (view) => reflectApply(typedArrayLength, view, []);

/** Strings longer than this are not read at all: taking even a prefix flattens a rope (512 MB for 'x'.repeat(2 ** 29 - 24)). */
const UNREADABLE_CHARS = 1 << 20;

/** At most `max` characters of `s`, and whether it was cut; a string too long to read is described instead. */
export function boundedText(s, max) {
  if (s.length <= max) return s;
  if (s.length > UNREADABLE_CHARS) return `[a string of ${s.length} characters, too long to show]`;
  return stringSlice(s, 0, max);
}

const setPrototypeOf = Object.setPrototypeOf;

/**
 * A list the prelude owns, without a prototype: a store into it has nothing inherited to reach, so
 * append() writes it plainly (defining each element instead costs ~1.5 µs per event in a micro-batch).
 * Read it with index loops only: it has no methods and no iterator.
 */
export const newList = () => setPrototypeOf([], null);

/**
 * Appends to an array the prelude owns without [[Set]]: a setter user code put on Array.prototype['0']
 * would otherwise see (and could replace) what the sandbox stores.
 */
export function append(list, value) {
  if (getPrototypeOf(list) === null) {
    list[list.length] = value;
    return;
  }
  defineProperty(list, list.length, {
    __proto__: null,
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

/**
 * A frozen copy without prototypes, for option objects handed to isolated-vm: it reads options through
 * the prototype chain, so a getter user code put on Object.prototype (`reference`, `copy`, …) would
 * otherwise decide how values cross.
 */
export function frozenOptions(options) {
  const out = objectCreate(null);
  for (const key of objectKeys(options)) {
    const value = options[key];
    out[key] = value !== null && typeof value === 'object' ? frozenOptions(value) : value;
  }
  return objectFreeze(out);
}

const promiseThen = Promise.prototype.then;
const promiseResolve = Promise.resolve;
const promiseReject = Promise.reject;

/** Promise.resolve and Promise.reject as they were, whatever user code did to them. */
export const resolved = (value) => reflectApply(promiseResolve, PromiseCtor, [value]);
export const rejected = (reason) => reflectApply(promiseReject, PromiseCtor, [reason]);

/** `promise.then(onFulfilled, onRejected)` with the original `then`, whatever user code did to it. */
export const whenSettled = (promise, onFulfilled, onRejected) =>
  reflectApply(promiseThen, promise, [onFulfilled, onRejected]);
