// cache: values computed by `fn` and kept for `ttlMs`, bounded in entries and approximate bytes.
// Concurrent loads of one key share a single call of `fn`.

import { host, sleep } from './host.js';
import {
  dateNow,
  jsonStringify,
  MapCtor,
  NumberCtor,
  objectFreeze,
  StringCtor,
  whenSettled,
} from './intrinsics.js';
import { running, setCurrent } from './invocation.js';

const cacheEntries = new MapCtor(); // key → { value, expires, bytes }
const cachePending = new MapCtor();
let cacheBytes = 0;

function cacheSize(value) {
  try {
    return 2 * (jsonStringify(value)?.length ?? 8) + 64;
  } catch {
    return 1024;
  }
}

function cacheRemove(key) {
  const e = cacheEntries.get(key);
  if (!e) return false;
  cacheBytes -= e.bytes;
  cacheEntries.delete(key);
  return true;
}

async function load(key, ttlMs, fn) {
  const k = StringCtor(key);
  if (typeof fn !== 'function') throw new TypeError('cache.load(key, ttlMs, fn): fn must be a function');
  const hit = cacheEntries.get(k);
  if (hit && hit.expires > dateNow()) {
    cacheEntries.delete(k); // re-insert: Map order is the LRU order
    cacheEntries.set(k, hit);
    return hit.value;
  }
  if (hit) cacheRemove(k);
  const invocation = running(load);
  const pending = cachePending.get(k);
  if (pending) {
    // Several invocations may wait for one load. Each resumes in a task of its own, so that the
    // invocation context restored for it is still in place when its code continues.
    const resume = async () => {
      await sleep(0, invocation);
      setCurrent(invocation);
    };
    return whenSettled(
      pending,
      async (value) => {
        await resume();
        return value;
      },
      async (err) => {
        await resume();
        throw err;
      },
    );
  }
  const loading = (async () => {
    try {
      const value = await fn();
      const bytes = cacheSize(value);
      if (bytes <= host.config.cacheBytes) {
        cacheRemove(k);
        while (cacheEntries.size >= host.config.cacheEntries || cacheBytes + bytes > host.config.cacheBytes) {
          cacheRemove(cacheEntries.keys().next().value);
        }
        cacheEntries.set(k, { value, expires: dateNow() + Math.max(0, NumberCtor(ttlMs) || 0), bytes });
        cacheBytes += bytes;
      }
      return value;
    } finally {
      cachePending.delete(k);
      setCurrent(invocation);
    }
  })();
  cachePending.set(k, loading);
  return loading;
}

export const cache = objectFreeze({
  load,
  delete(key) {
    return cacheRemove(StringCtor(key));
  },
});
