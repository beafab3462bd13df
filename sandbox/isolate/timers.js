// setTimeout, setInterval and their clear functions, backed by host timers so they also wake an idle
// isolate.
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
  RangeErrorCtor,
  TypeErrorCtor,
  whenSettled,
} from './intrinsics.js';
import { running, setCurrent } from './invocation.js';

let timerSeq = 0;
const timers = new MapCtor(); // timer id → invocation id
const pendingOf = new MapCtor(); // invocation id → pending timers

function settled(id, invocation) {
  const left = (mapGet(pendingOf, invocation) ?? 1) - 1;
  if (left > 0) mapSet(pendingOf, invocation, left);
  else mapDelete(pendingOf, invocation);
  return mapDelete(timers, id);
}

/** Charges a new timer to the running invocation, within the bounds; its id. */
function admit(entry, name, callback) {
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
  mapSet(timers, id, invocation);
  mapSet(pendingOf, invocation, pending + 1);
  return id;
}

function fire(name, invocation, callback, args) {
  setCurrent(invocation);
  try {
    callback(...args);
  } catch (err) {
    writeLog('error', [`Uncaught exception in ${name} callback:`, err]);
  }
}

export function setTimeout(callback, ms, ...args) {
  const id = admit(setTimeout, 'setTimeout', callback);
  const invocation = mapGet(timers, id);
  whenSettled(sleep(Math.max(0, NumberCtor(ms) || 0), invocation, id), (elapsed) => {
    if (!settled(id, invocation) || !elapsed) return;
    fire('setTimeout', invocation, callback, args);
  });
  return id;
}

/**
 * One pending timer for the interval's whole life, re-armed after each run (Node's period is at least
 * 1 ms); it ends with clearInterval or with the invocation that set it, like a setTimeout.
 */
export function setInterval(callback, ms, ...args) {
  const id = admit(setInterval, 'setInterval', callback);
  const invocation = mapGet(timers, id);
  const period = Math.max(1, NumberCtor(ms) || 0);
  const arm = () =>
    whenSettled(sleep(period, invocation, id), (elapsed) => {
      if (mapGet(timers, id) === undefined) return;
      if (!elapsed) {
        settled(id, invocation);
        return;
      }
      fire('setInterval', invocation, callback, args);
      if (mapGet(timers, id) !== undefined) arm();
    });
  arm();
  return id;
}

export function clearTimeout(id) {
  const invocation = mapGet(timers, id);
  if (invocation === undefined) return;
  settled(id, invocation);
  cancelSleep(id);
}

/** Timeouts and intervals share their ids, as in Node: either clear function clears either. */
export function clearInterval(id) {
  clearTimeout(id);
}
