// Which invocation is running, so console output, requests and timers are charged to the invocation
// whose code made them. Each handler runs with a receiver of its own (`this`, a transparent view of the
// global object); running() finds it on the call stack, async frames included, so code resuming after a
// promise shared by several invocations (a memoised token) is still told apart. V8 shows receivers only
// of sloppy-mode frames above the first strict-mode one (our own frames are skipped), so where the stack
// shows none (a strict-mode handler or class method, a bare .then callback, a timer), the invocation host
// I/O last resumed for (`current`, set by fetch, timers and cache) decides.

import {
  apply,
  ErrorCtor,
  getPrototypeOf,
  objectCreate,
  objectFreeze,
  ProxyCtor,
  WeakMapCtor,
  weakMapGet,
  weakMapSet,
} from './intrinsics.js';

/** 0: top-level code while the function loads. */
export let current = 0;

export function setCurrent(id) {
  current = id;
}

const receivers = new WeakMapCtor(); // receiver → invocation id
const passThrough = objectFreeze(objectCreate(null));

/** The `this` of a handler run for invocation `id`: reads and writes go to the global object. */
export function receiverFor(id) {
  const receiver = new ProxyCtor(globalThis, passThrough);
  weakMapSet(receivers, receiver, id);
  return receiver;
}

const captureStackTrace = ErrorCtor.captureStackTrace;
const STACK_FRAMES = 64;
let getThis;
let found;

function prepare(_error, frames) {
  for (let i = 0; i < frames.length; i++) {
    const self = getThis(frames[i]);
    if (self !== null && (typeof self === 'object' || typeof self === 'function')) {
      const id = weakMapGet(receivers, self);
      if (id !== undefined) {
        found = id;
        return '';
      }
    }
  }
  return '';
}

// CallSite's getThis as it is now, before user code could replace it on the CallSite prototype.
{
  const saved = ErrorCtor.prepareStackTrace;
  ErrorCtor.prepareStackTrace = (_e, frames) => {
    const method = getPrototypeOf(frames[0]).getThis;
    getThis = (site) => apply(method, site, []);
    return '';
  };
  const holder = objectCreate(null);
  captureStackTrace(holder);
  void holder.stack;
  ErrorCtor.prepareStackTrace = saved;
}

/** The invocation whose code is running now; `entry` is the sandbox function user code called. */
export function running(entry) {
  found = undefined;
  let savedPrepare;
  let savedLimit;
  let swapped = false;
  try {
    savedPrepare = ErrorCtor.prepareStackTrace;
    savedLimit = ErrorCtor.stackTraceLimit;
    ErrorCtor.prepareStackTrace = prepare;
    ErrorCtor.stackTraceLimit = STACK_FRAMES;
    swapped = true;
    const holder = objectCreate(null);
    // Frames up to and including `entry` are left out: they are strict and would hide the receivers.
    captureStackTrace(holder, entry);
    void holder.stack;
  } catch {
    found = undefined; // user code made the stack machinery unusable: fall back to `current`
  } finally {
    if (swapped) {
      try {
        ErrorCtor.prepareStackTrace = savedPrepare;
        ErrorCtor.stackTraceLimit = savedLimit;
      } catch {
        // nothing to restore into
      }
    }
  }
  return found ?? current;
}
