// setTimeout and clearTimeout, backed by host timers so they also wake an otherwise idle isolate.
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

export function setTimeout(callback, ms, ...args) {
  if (typeof callback !== 'function')
    throw new TypeErrorCtor('The "callback" argument must be of type function');
  const { timersPerInvocation, timersPerIsolate } = host.config.bounds;
  const invocation = running(setTimeout);
  const pending = mapGet(pendingOf, invocation) ?? 0;
  if (pending >= timersPerInvocation)
    throw new RangeErrorCtor(
      `setTimeout: at most ${timersPerInvocation} timers can be pending in one invocation`,
    );
  if (mapSize(timers) >= timersPerIsolate)
    throw new RangeErrorCtor(`setTimeout: at most ${timersPerIsolate} timers can be pending in one function`);
  const id = ++timerSeq;
  mapSet(timers, id, invocation);
  mapSet(pendingOf, invocation, pending + 1);
  whenSettled(sleep(Math.max(0, NumberCtor(ms) || 0), invocation, id), (elapsed) => {
    if (!settled(id, invocation) || !elapsed) return;
    setCurrent(invocation);
    try {
      callback(...args);
    } catch (err) {
      writeLog('error', ['Uncaught exception in setTimeout callback:', err]);
    }
  });
  return id;
}

export function clearTimeout(id) {
  const invocation = mapGet(timers, id);
  if (invocation === undefined) return;
  settled(id, invocation);
  cancelSleep(id);
}
