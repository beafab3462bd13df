// The dispatcher: one call from the host carries a micro-batch of events; each event's handler runs
// concurrently and the call returns one result per event, plus each invocation's console output.

import { newSink, sinks } from './console.js';
import { EventNotSupported, errorClasses, InvalidEventPayload } from './errors.js';
import { host, sleep } from './host.js';
import {
  dateNow,
  hasOwn,
  isArray,
  jsonParse,
  jsonStringify,
  NumberCtor,
  objectKeys,
  PromiseCtor,
  StringCtor,
  whenSettled,
} from './intrinsics.js';
import { setCurrent } from './invocation.js';

let handlers = {};

function errorMessage(err) {
  try {
    if (err instanceof Error) return StringCtor(err.message || err.name);
    return StringCtor(err);
  } catch {
    return 'an unprintable value was thrown';
  }
}

function classify(err) {
  for (const [name, cls] of errorClasses) {
    if (err instanceof cls) return { ok: false, errorClass: name, message: errorMessage(err) };
  }
  return { ok: false, errorClass: 'Error', message: errorMessage(err) };
}

function runSingle(event) {
  const type = event && typeof event === 'object' ? event.type : undefined;
  // Which handler each event type goes to: api/events.ts's table, handed over by the host.
  const table = host.config.handlerForType;
  const handlerName = typeof type === 'string' && hasOwn(table, type) ? table[type] : undefined;
  if (!handlerName) throw new InvalidEventPayload(`unknown event type ${jsonStringify(type)}`);
  const handler = handlers[handlerName];
  if (!handler)
    throw new EventNotSupported(`${type} is not supported: the function defines no ${handlerName}`);
  return handler(event, jsonParse(host.config.settings));
}

function batchResult(returned, count) {
  if (!isArray(returned)) return { ok: true };
  const statuses = [];
  for (let i = 0; i < returned.length; i++) {
    let status = 0;
    let message = '';
    try {
      const entry = returned[i];
      status = NumberCtor(entry?.status) || 0;
      message = entry?.errormessage === undefined ? '' : StringCtor(entry.errormessage);
    } catch (err) {
      message = errorMessage(err);
    }
    statuses.push([status, message]);
  }
  if (statuses.length !== count) {
    return {
      ok: false,
      errorClass: 'Error',
      message: `onBatch returned ${statuses.length} results for ${count} events: return one {status, errormessage} per event, in order`,
    };
  }
  return { ok: true, statuses };
}

export function dispatch(requestJson) {
  const request = jsonParse(requestJson);
  const started = dateNow();
  const ids = request.ids;
  const count = ids.length;
  const results = new Array(count);
  let settled = 0;
  // Results go to the host as they settle (coalesced per microtask turn, so a micro-batch of handlers
  // that finish together costs one crossing): when the host must kill the isolate, what already
  // finished keeps its result and only the unfinished invocations are in doubt.
  let ready = [];
  let flushQueued = false;
  const flush = () => {
    flushQueued = false;
    // Indexed writes, not push(): user code may have replaced Array.prototype methods.
    const done = [];
    for (let k = 0; k < ready.length; k++) {
      const i = ready[k];
      done[k] = [i, results[i], sinks.get(ids[i]).lines];
      sinks.delete(ids[i]);
    }
    ready = [];
    host.deliver.applyIgnored(undefined, [request.callId, jsonStringify(done)], {
      arguments: { copy: true },
    });
  };
  const finish = (i, result) => {
    if (results[i] !== undefined) return;
    results[i] = result;
    settled++;
    ready[ready.length] = i;
    if (!flushQueued) {
      flushQueued = true;
      whenSettled(PromiseCtor.resolve(), flush);
    }
  };
  for (const id of ids) sinks.set(id, newSink());
  const track = (i, start, promise) =>
    whenSettled(
      promise,
      (value) => {
        const result = request.batch ? batchResult(value, request.events.length) : { ok: true };
        result.durationMs = dateNow() - start;
        finish(i, result);
      },
      (err) => {
        const result = classify(err);
        result.durationMs = dateNow() - start;
        finish(i, result);
      },
    );
  if (request.batch) {
    setCurrent(ids[0]);
    const handler = handlers.onBatch;
    let p;
    try {
      if (!handler) throw new EventNotSupported('the function defines no onBatch');
      p = PromiseCtor.resolve(handler(request.events, jsonParse(host.config.settings)));
    } catch (err) {
      p = PromiseCtor.reject(err);
    }
    track(0, started, p);
  } else {
    for (let i = 0; i < count; i++) {
      setCurrent(ids[i]);
      const start = dateNow();
      let p;
      try {
        p = PromiseCtor.resolve(runSingle(request.events[i]));
      } catch (err) {
        p = PromiseCtor.reject(err);
      }
      track(i, start, p);
    }
  }
  if (settled === count) return;
  // One deadline per invocation, counted from when the isolate took this call up (the host's backstop
  // counts from the same moment). Invocations still pending then time out here; a CPU loop never lets
  // this fire, and the host's backstop kills the isolate instead.
  whenSettled(sleep(Math.max(0, request.deadlineMs - (dateNow() - started))), () => {
    for (let i = 0; i < count; i++) {
      finish(i, {
        ok: false,
        errorClass: 'Timeout',
        message: `the invocation did not finish within ${request.deadlineMs} ms`,
        durationMs: request.deadlineMs,
      });
    }
  });
}

export function setHandlers(table) {
  handlers = {};
  for (const name of objectKeys(table)) if (typeof table[name] === 'function') handlers[name] = table[name];
  return objectKeys(handlers);
}
