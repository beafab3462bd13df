// Headers with node-fetch semantics: case-insensitive names, multiple values joined, raw(), values checked.

import { isArray, MapCtor, objectKeys, StringCtor } from './intrinsics.js';

function normalizeHeaderName(name) {
  const n = StringCtor(name);
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(n))
    throw new TypeError(`Header name must be a valid HTTP token ["${n}"]`);
  return n.toLowerCase();
}

/** A value as node-fetch checks it (Node's own check): no CR, LF or other control character but tab. */
function checkedValue(name, value) {
  const v = StringCtor(value);
  if (/[^\t\u0020-\u007E\u0080-\u00FF]/.test(v)) {
    const err = new TypeError(`Invalid character in header content ["${StringCtor(name)}"]`);
    err.code = 'ERR_INVALID_CHAR';
    throw err;
  }
  return v.trim();
}

export class Headers {
  #map = new MapCtor(); // lower-case name → values
  constructor(init) {
    if (init === undefined || init === null) return;
    if (init instanceof Headers) {
      for (const [k, v] of init.#map) this.#map.set(k, v.slice());
    } else if (typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
      for (const pair of init) {
        const p = Array.from(pair);
        if (p.length !== 2) throw new TypeError('Each header pair must be an iterable [name, value] tuple');
        this.append(p[0], p[1]);
      }
    } else if (typeof init === 'object') {
      for (const key of objectKeys(init)) {
        const value = init[key];
        if (isArray(value)) for (const v of value) this.append(key, v);
        else this.append(key, value);
      }
    } else throw new TypeError('Headers: expected an object, an array of pairs or a Headers instance');
  }
  append(name, value) {
    const n = normalizeHeaderName(name);
    const v = checkedValue(name, value);
    const list = this.#map.get(n);
    if (list) list.push(v);
    else this.#map.set(n, [v]);
  }
  set(name, value) {
    this.#map.set(normalizeHeaderName(name), [checkedValue(name, value)]);
  }
  get(name) {
    const list = this.#map.get(normalizeHeaderName(name));
    return list ? list.join(', ') : null;
  }
  has(name) {
    return this.#map.has(normalizeHeaderName(name));
  }
  delete(name) {
    this.#map.delete(normalizeHeaderName(name));
  }
  forEach(fn, thisArg) {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }
  *entries() {
    for (const k of [...this.#map.keys()].sort()) yield [k, this.#map.get(k).join(', ')];
  }
  *keys() {
    for (const [k] of this.entries()) yield k;
  }
  *values() {
    for (const [, v] of this.entries()) yield v;
  }
  [Symbol.iterator]() {
    return this.entries();
  }
  /** node-fetch extension: every value of every header. */
  raw() {
    const out = {};
    for (const [k, v] of this.#map) out[k] = v.slice();
    return out;
  }
  get [Symbol.toStringTag]() {
    return 'Headers';
  }
}
