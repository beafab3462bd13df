// setTimeout and clearTimeout, backed by host timers so they also wake an otherwise idle isolate.

import { writeLog } from './console.js';
import { sleep } from './host.js';
import { MapCtor, NumberCtor, whenSettled } from './intrinsics.js';
import { current, setCurrent } from './invocation.js';

let timerSeq = 0;
const timers = new MapCtor();

export function setTimeout(callback, ms, ...args) {
  if (typeof callback !== 'function') throw new TypeError('The "callback" argument must be of type function');
  const id = ++timerSeq;
  const invocation = current;
  timers.set(id, true);
  whenSettled(sleep(Math.max(0, NumberCtor(ms) || 0)), () => {
    if (!timers.delete(id)) return;
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
  timers.delete(id);
}
