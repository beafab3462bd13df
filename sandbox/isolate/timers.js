// setTimeout, setInterval and their clear functions, backed by host timers so they also wake an idle
// isolate. They return a Timeout as Node does (ref/unref/hasRef/refresh/close, and a number as its
// primitive value), and the clear functions take either it or that number.
// Bounded: pending timers per invocation and per isolate (config.bounds). A timer belongs to the
// invocation that set it and is cancelled when that invocation ends (the host resolves its sleep false).

import { writeLog } from './console.js';
import { cancelSleep, host, sleep } from './host.js';
import {
  MapCtor,
  mapDelete,
  mapGet,
  mapSet,
  mapSize,
  NumberCtor,
  named,
  RangeErrorCtor,
  TypeErrorCtor,
  whenSettled,
} from './intrinsics.js';
import { running, setCurrent } from './invocation.js';

let timerSeq = 0; // timer ids and the keys of their host sleeps (a refreshed timer sleeps under a new key)
const timers = new MapCtor(); // timer id → { invocation, key, ms, repeat, name, callback, args }
const pendingOf = new MapCtor(); // invocation id → pending timers

/** The id of a Timeout, or undefined for anything else (the brand check user code cannot forge). */
let idOf;

/**
 * What setTimeout and setInterval return, as in Node. ref/unref only say whether it would keep Node's
 * process alive: here the invocation's own end is what ends it, whatever they say.
 */
class Timeout {
  #id;
  #ref = true;
  static {
    idOf = (value) => (#id in value ? value.#id : undefined);
  }
  constructor(id) {
    this.#id = id;
  }
  ref() {
    this.#ref = true;
    return this;
  }
  unref() {
    this.#ref = false;
    return this;
  }
  hasRef() {
    return this.#ref;
  }
  /** Starts the timer's wait over, if it is still pending. */
  refresh() {
    const entry = mapGet(timers, this.#id);
    if (entry !== undefined) {
      cancelSleep(entry.key);
      arm(this.#id, entry);
    }
    return this;
  }
  close() {
    clearTimeout(this);
    return this;
  }
  [Symbol.toPrimitive]() {
    return this.#id;
  }
}
named(Timeout, 'Timeout');

function settled(id, invocation) {
  const left = (mapGet(pendingOf, invocation) ?? 1) - 1;
  if (left > 0) mapSet(pendingOf, invocation, left);
  else mapDelete(pendingOf, invocation);
  return mapDelete(timers, id);
}

/** Charges a new timer to the running invocation, within the bounds; its id. */
function admit(entry, name, callback, ms, repeat, args) {
  if (typeof callback !== 'function')
    throw new TypeErrorCtor('The "callback" argument must be of type function');
  const { timersPerInvocation, timersPerIsolate } = host.config.bounds;
  const invocation = running(entry);
  const pending = mapGet(pendingOf, invocation) ?? 0;
  if (pending >= timersPerInvocation)
    throw new RangeErrorCtor(
      `${name}: at most ${timersPerInvocation} timers can be pending in one invocation`,
    );
  if (mapSize(timers) >= timersPerIsolate)
    throw new RangeErrorCtor(`${name}: at most ${timersPerIsolate} timers can be pending in one function`);
  const id = ++timerSeq;
  const timer = { __proto__: null, invocation, key: 0, ms, repeat, name, callback, args };
  mapSet(timers, id, timer);
  mapSet(pendingOf, invocation, pending + 1);
  arm(id, timer);
  return new Timeout(id);
}

/** One wait of a timer on the host; a wait that is not the timer's latest (refreshed, cleared) does nothing. */
function arm(id, timer) {
  const key = ++timerSeq;
  timer.key = key;
  whenSettled(sleep(timer.ms, timer.invocation, key), (elapsed) => {
    if (mapGet(timers, id) !== timer || timer.key !== key) return;
    if (!elapsed || !timer.repeat) settled(id, timer.invocation);
    if (!elapsed) return;
    fire(timer);
    if (timer.repeat && mapGet(timers, id) === timer && timer.key === key) arm(id, timer);
  });
}

function fire(timer) {
  setCurrent(timer.invocation);
  try {
    timer.callback(...timer.args);
  } catch (err) {
    writeLog('error', [`Uncaught exception in ${timer.name} callback:`, err]);
  }
}

export function setTimeout(callback, ms, ...args) {
  return admit(setTimeout, 'setTimeout', callback, Math.max(0, NumberCtor(ms) || 0), false, args);
}

/** Re-armed after each run (Node's period is at least 1 ms); it ends with clearInterval or with its invocation. */
export function setInterval(callback, ms, ...args) {
  return admit(setInterval, 'setInterval', callback, Math.max(1, NumberCtor(ms) || 0), true, args);
}

/** A Timeout, or its number (what `+timeout` gives), or that number as a string, as Node takes them. */
export function clearTimeout(timeout) {
  let id = timeout;
  if (typeof timeout === 'object' && timeout !== null) id = idOf(timeout);
  else if (typeof timeout === 'string') id = NumberCtor(timeout);
  const timer = mapGet(timers, id);
  if (timer === undefined) return;
  settled(id, timer.invocation);
  cancelSleep(timer.key);
}

/** Timeouts and intervals share their ids, as in Node: either clear function clears either. */
export function clearInterval(id) {
  clearTimeout(id);
}
