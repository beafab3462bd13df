// `res.body` of the sandbox's fetch: node-fetch 2 gives a Node Readable there. The host has already read
// the whole body (within the response size cap), so this stand-in replays those bytes as Buffer chunks
// through what user code does with a Readable: `for await … of`, `on('data'|'end'|'error'|'close')`,
// `once`, `pipe`, `pause`/`resume`, `destroy`. Reading it is reading the body: the response's bodyUsed
// turns true and a later text()/json() rejects with node-fetch's "body used already" TypeError (node-fetch
// 2 instead waits forever there). Chunks are views of the body's own bytes in the isolate's heap.

import { bufferOf } from './buffer.js';
import { writeLog } from './console.js';
import { append, ErrorCtor, resolved, StringCtor, TypeErrorCtor, whenSettled } from './intrinsics.js';
import { running, setCurrent } from './invocation.js';

/** Node's default highWaterMark for byte streams: the size of the chunks the body is replayed in. */
const CHUNK_BYTES = 16 * 1024;
/** Listeners per event, as a bound on what one stream holds (Node only warns past 10). */
const MAX_LISTENERS = 1_000;

export class BodyStream {
  #take; // () → Uint8Array: consumes the body (throws when it was used already)
  #by = 0; // the invocation that started the flow: the listeners' console lines and timers are its own
  #bytes;
  #offset = 0;
  #listeners = { __proto__: null };
  #state = 'idle'; // idle | flowing | paused | iterating | ended | destroyed
  #scheduled = false;
  #failure; // what destroyed it, if an error did: reading it again throws that, as a Readable's iterator does

  constructor(take) {
    this.#take = take;
  }

  get readable() {
    return this.#state !== 'ended' && this.#state !== 'destroyed';
  }
  get destroyed() {
    return this.#state === 'destroyed';
  }
  get readableEnded() {
    return this.#state === 'ended';
  }

  on(event, listener) {
    this.#add(event, listener);
    // As a Readable: a 'data' listener starts the flow, unless paused explicitly.
    if (StringCtor(event) === 'data' && this.#state === 'idle') this.#flow(running(ENTRY.on));
    return this;
  }
  #add(event, listener) {
    if (typeof listener !== 'function')
      throw new TypeErrorCtor('The "listener" argument must be of type function');
    const name = StringCtor(event);
    let list = this.#listeners[name];
    if (list === undefined) {
      list = [];
      this.#listeners[name] = list;
    }
    if (list.length >= MAX_LISTENERS)
      throw new ErrorCtor(`a body stream can have at most ${MAX_LISTENERS} '${name}' listeners`);
    append(list, listener);
  }
  addListener(event, listener) {
    return this.on(event, listener);
  }
  once(event, listener) {
    if (typeof listener !== 'function')
      throw new TypeErrorCtor('The "listener" argument must be of type function');
    const once = (...args) => {
      this.off(event, once);
      return listener.apply(this, args);
    };
    once.listener = listener;
    this.#add(event, once);
    if (StringCtor(event) === 'data' && this.#state === 'idle') this.#flow(running(ENTRY.once));
    return this;
  }
  off(event, listener) {
    const list = this.#listeners[StringCtor(event)];
    if (!list) return this;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i] === listener || list[i].listener === listener) {
        list.splice(i, 1);
        break;
      }
    }
    return this;
  }
  removeListener(event, listener) {
    return this.off(event, listener);
  }
  removeAllListeners(event) {
    if (event === undefined) this.#listeners = { __proto__: null };
    else delete this.#listeners[StringCtor(event)];
    return this;
  }
  listenerCount(event) {
    return this.#listeners[StringCtor(event)]?.length ?? 0;
  }

  resume() {
    if (this.#state === 'idle' || this.#state === 'paused') this.#flow(running(ENTRY.resume));
    return this;
  }
  pause() {
    if (this.#state === 'idle' || this.#state === 'flowing') this.#state = 'paused';
    return this;
  }
  isPaused() {
    return this.#state === 'paused';
  }

  /** Writes every chunk to `dest` and, unless `{ end: false }`, ends it. */
  pipe(dest, options) {
    const by = running(ENTRY.pipe);
    const end = options?.end !== false;
    this.#add('data', (chunk) => dest.write(chunk));
    if (end) this.#add('end', () => dest.end());
    this.#add('error', (err) => {
      if (typeof dest.destroy === 'function') dest.destroy(err);
    });
    if (typeof dest.emit === 'function') dest.emit('pipe', this);
    if (this.#state === 'idle' || this.#state === 'paused') this.#flow(by);
    return dest;
  }

  destroy(error) {
    if (this.#state === 'destroyed' || this.#state === 'ended') return this;
    this.#state = 'destroyed';
    this.#bytes = undefined;
    this.#failure = error;
    if (error !== undefined) this.#emit('error', error);
    this.#emit('close');
    return this;
  }

  async *[Symbol.asyncIterator]() {
    if (this.#state === 'flowing' || this.#state === 'iterating')
      throw new TypeErrorCtor('the body stream is being read already');
    if (this.#state === 'destroyed') {
      if (this.#failure !== undefined) throw this.#failure;
      return;
    }
    this.#state = 'iterating';
    const bytes = this.#take();
    for (let at = 0; at < bytes.length; at += CHUNK_BYTES) {
      if (this.#state !== 'iterating') return;
      yield bufferOf(bytes.subarray(at, at + CHUNK_BYTES));
    }
    this.#state = 'ended';
  }

  #flow(by) {
    this.#by = by;
    this.#state = 'flowing';
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Later, as a Readable's flow starts on the next tick: listeners attached after `on('data')` still run.
    whenSettled(resolved(undefined), () => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  #pump() {
    if (this.#state !== 'flowing') return;
    setCurrent(this.#by);
    if (this.#bytes === undefined) {
      try {
        this.#bytes = this.#take();
      } catch (err) {
        this.destroy(err);
        return;
      }
    }
    const bytes = this.#bytes;
    while (this.#offset < bytes.length) {
      if (this.#state !== 'flowing') return;
      const chunk = bufferOf(bytes.subarray(this.#offset, this.#offset + CHUNK_BYTES));
      this.#offset += CHUNK_BYTES;
      this.#emit('data', chunk);
    }
    if (this.#state !== 'flowing') return;
    this.#state = 'ended';
    this.#bytes = undefined;
    this.#emit('end');
    this.#emit('close');
  }

  /** Calls the listeners; one that throws is an uncaught exception, as in Node: logged, the stream destroyed. */
  #emit(event, arg) {
    const list = this.#listeners[event];
    if (!list || list.length === 0) {
      if (event === 'error') writeLog('error', ['Uncaught exception in a response body stream:', arg]);
      return;
    }
    const listeners = list.slice();
    for (let i = 0; i < listeners.length; i++) {
      try {
        listeners[i].call(this, arg);
      } catch (err) {
        writeLog('error', [`Uncaught exception in a body stream '${event}' listener:`, err]);
        if (event !== 'error' && event !== 'close') this.destroy();
        return;
      }
    }
  }

  get [Symbol.toStringTag]() {
    return 'PassThrough';
  }
}

/** The methods user code calls, as the stack walk that tells which invocation called them needs them. */
const ENTRY = {
  on: BodyStream.prototype.on,
  once: BodyStream.prototype.once,
  resume: BodyStream.prototype.resume,
  pipe: BodyStream.prototype.pipe,
};
