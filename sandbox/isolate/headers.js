// Headers with node-fetch 2's semantics (Segment's runtime): names are matched case-insensitively, but
// each header keeps the case it was first given (`raw()` and the request on the wire show it); iteration
// gives lower-case names sorted as node-fetch 2 sorts them (by the kept names), multiple values joined.
// Names and values are checked with node-fetch 2's checks and its messages. Unlike node-fetch 2, a lookup
// costs one Map access, not a scan of every name: 10,000 names cost no more than they weigh.

import { MapCtor, named, objectCreate, objectKeys, StringCtor } from './intrinsics.js';

const INVALID_NAME = /[^^_`a-zA-Z\-0-9!#$%&'*+.|~]/;
/** Node's (and node-fetch 2's) header value check: no CR, LF or other control character but tab. */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

function checkedName(name) {
  const n = StringCtor(name);
  if (n === '' || INVALID_NAME.test(n)) throw new TypeError(`${n} is not a legal HTTP header name`);
  return n;
}

function checkedValue(value) {
  const v = StringCtor(value);
  if (INVALID_VALUE.test(v)) throw new TypeError(`${v} is not a legal HTTP header value`);
  return v;
}

/** Sorts as node-fetch 2's `Object.keys(map).sort()`: by UTF-16 code units of the kept names. */
const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** [name as first given, value] for each value, in order: the request's headers as they go on the wire. */
export let wireHeaders;

export class Headers {
  #map = new MapCtor(); // lower-case name → { name: as first given, values }
  static {
    wireHeaders = (headers) => {
      const out = [];
      for (const h of headers.#map.values()) for (const v of h.values) out.push([h.name, v]);
      return out;
    };
  }
  constructor(init) {
    if (init === undefined || init === null) return;
    if (init instanceof Headers) {
      for (const [k, h] of init.#map) this.#map.set(k, { name: h.name, values: h.values.slice() });
    } else if (typeof init === 'object' && init[Symbol.iterator] != null) {
      if (typeof init[Symbol.iterator] !== 'function') throw new TypeError('Header pairs must be iterable');
      const pairs = [];
      for (const pair of init) {
        if (typeof pair !== 'object' || pair === null || typeof pair[Symbol.iterator] !== 'function')
          throw new TypeError('Each header pair must be iterable');
        pairs.push(Array.from(pair));
      }
      for (const p of pairs) {
        if (p.length !== 2) throw new TypeError('Each header pair must be a name/value tuple');
        this.append(p[0], p[1]);
      }
    } else if (typeof init === 'object') {
      // An array value is a string like any other to node-fetch 2 (`${['a', 'b']}` is "a,b").
      for (const key of objectKeys(init)) this.append(key, init[key]);
    } else throw new TypeError('Provided initializer must be an object');
  }
  append(name, value) {
    const n = checkedName(name);
    const v = checkedValue(value);
    const key = n.toLowerCase();
    const h = this.#map.get(key);
    if (h) h.values.push(v);
    else this.#map.set(key, { name: n, values: [v] });
  }
  set(name, value) {
    const n = checkedName(name);
    const v = checkedValue(value);
    const key = n.toLowerCase();
    const h = this.#map.get(key);
    if (h) h.values = [v];
    else this.#map.set(key, { name: n, values: [v] });
  }
  get(name) {
    const h = this.#map.get(checkedName(name).toLowerCase());
    return h ? h.values.join(', ') : null;
  }
  has(name) {
    return this.#map.has(checkedName(name).toLowerCase());
  }
  delete(name) {
    this.#map.delete(checkedName(name).toLowerCase());
  }
  forEach(fn, thisArg) {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }
  *entries() {
    const sorted = [...this.#map.values()].sort(byName);
    for (const h of sorted) yield [h.name.toLowerCase(), h.values.join(', ')];
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
  /** node-fetch extension: every value of every header, under the names as first given. */
  raw() {
    const out = objectCreate(null);
    for (const h of this.#map.values()) out[h.name] = h.values.slice();
    return out;
  }
  get [Symbol.toStringTag]() {
    return 'Headers';
  }
}

named(Headers, 'Headers');
