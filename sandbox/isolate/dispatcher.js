// The dispatcher: one call from the host carries a micro-batch of events; each event's handler runs
// concurrently, and each invocation's result and console output go back to the host as it settles.
// It runs among user code that may have replaced any built-in method or put getters on any prototype, so
// it calls only captured intrinsics, reads only properties its records own (every field is set, so no
// read reaches a getter on a prototype; results are kept in a Map), and writes its output from
// primitives (no JSON.stringify of objects: an Object.prototype.toJSON would write it).

import { encodeSink, newSink, sinks } from './console.js';
import { EventNotSupported, errorClasses, InvalidEventPayload } from './errors.js';
import { fetchesEnded } from './fetch.js';
import { copyArguments, host } from './host.js';
import {
  append,
  apply,
  boundedText,
  dateNow,
  ErrorCtor,
  hasOwn,
  isArray,
  jsonParse,
  jsonStringify,
  MapCtor,
  mapDelete,
  mapGet,
  mapSet,
  NumberCtor,
  newList,
  objectCreate,
  objectKeys,
  rejected,
  resolved,
  StringCtor,
  whenSettled,
} from './intrinsics.js';
import { receiverFor, setCurrent } from './invocation.js';

let handlers = objectCreate(null);
/** Calls with invocations still pending, by call id: how to time them out at their deadline. */
const calls = new MapCtor();

function errorText(err) {
  try {
    if (err instanceof ErrorCtor) return StringCtor(err.message || err.name);
    return StringCtor(err);
  } catch {
    return 'an unprintable value was thrown';
  }
}

/** A result for the host, its message bounded here: a 512 MB message must not have to cross. */
function failed(errorClass, err) {
  const text = typeof err === 'string' ? err : errorText(err);
  const max = host.config.bounds.errorMessageChars;
  const cut = text.length > max;
  return makeResult(false, errorClass, boundedText(text, max), cut, undefined);
}

/** A result with every field its own, in one shape. */
function makeResult(ok, errorClass, message, messageCut, statuses) {
  return { ok, errorClass, message, messageCut, statuses, durationMs: 0 };
}
const succeeded = () => makeResult(true, undefined, undefined, false, undefined);

function classify(err) {
  for (let i = 0; i < errorClasses.length; i++) {
    const entry = errorClasses[i];
    if (err instanceof entry[1]) return failed(entry[0], err);
  }
  return failed('Error', err);
}

function runSingle(event, receiver) {
  const type = event && typeof event === 'object' ? event.type : undefined;
  // Which handler each event type goes to: api/events.ts's table, handed over by the host.
  const table = host.config.handlerForType;
  const handlerName = typeof type === 'string' && hasOwn(table, type) ? table[type] : undefined;
  if (!handlerName)
    throw new InvalidEventPayload(
      `unknown event type ${jsonStringify(typeof type === 'string' ? type : StringCtor(type))}`,
    );
  const handler = handlers[handlerName];
  if (!handler)
    throw new EventNotSupported(`${type} is not supported: the function defines no ${handlerName}`);
  return apply(handler, receiver, [event, jsonParse(host.config.settings)]);
}

function batchResult(returned, count) {
  if (!isArray(returned)) return succeeded();
  const length = returned.length;
  if (length !== count) {
    return failed(
      'Error',
      `onBatch returned ${NumberCtor(length) || 0} results for ${count} events: return one {status, errormessage} per event, in order`,
    );
  }
  const statuses = newList();
  const max = host.config.bounds.errorMessageChars;
  for (let i = 0; i < count; i++) {
    let status = 0;
    let message = '';
    try {
      const entry = returned[i];
      status = NumberCtor(entry?.status) || 0;
      message = entry?.errormessage === undefined ? '' : StringCtor(entry.errormessage);
    } catch (err) {
      message = errorText(err);
    }
    append(statuses, [status, boundedText(message, max)]);
  }
  return makeResult(true, undefined, undefined, false, statuses);
}

const numberText = (n) => (typeof n === 'number' && n >= 0 && n < 1e15 ? `${n}` : '0');
const flag = (b) => (b === true ? 'true' : 'false');

/** One result as JSON, from primitives only. */
function encodeResult(r) {
  let s = `{"ok":${flag(r.ok)},"durationMs":${numberText(r.durationMs)}`;
  if (typeof r.errorClass === 'string') s += `,"errorClass":${jsonStringify(r.errorClass)}`;
  if (typeof r.message === 'string')
    s += `,"message":${jsonStringify(r.message)},"messageCut":${flag(r.messageCut)}`;
  const statuses = r.statuses;
  if (statuses !== undefined) {
    s += ',"statuses":[';
    for (let i = 0; i < statuses.length; i++) {
      const st = statuses[i];
      s += `${i ? ',' : ''}[${numberText(st[0])},${jsonStringify(st[1])}]`;
    }
    s += ']';
  }
  return `${s}}`;
}

/** A result with nothing to say but its duration: ok, no message, no batch statuses, no console output. */
const isPlain = (r, sink) =>
  r.ok === true &&
  r.message === undefined &&
  r.errorClass === undefined &&
  r.statuses === undefined &&
  sink.lines.length === 0 &&
  sink.truncated !== true;

export function dispatch(requestJson) {
  const request = jsonParse(requestJson);
  const started = dateNow();
  const ids = request.ids;
  const count = ids.length;
  const results = new MapCtor(); // index → result, once settled
  for (let i = 0; i < count; i++) mapSet(sinks, ids[i], newSink());
  // Results go to the host as they settle (coalesced per microtask turn, so a micro-batch of handlers
  // that finish together costs one crossing): when the host must kill the isolate, what already
  // finished keeps its result and only the unfinished invocations are in doubt. They go back through
  // hostDeliver rather than as this call's result: isolated-vm fails a call when user code leaves a
  // promise rejection unhandled, and that must not fail the whole micro-batch.
  let ready = newList();
  let flushQueued = false;
  const flush = () => {
    flushQueued = false;
    const done = ready;
    ready = newList();
    const ended = newList();
    let out = '[';
    for (let k = 0; k < done.length; k++) {
      const i = done[k];
      const id = ids[i];
      const result = mapGet(results, i);
      const sink = mapGet(sinks, id);
      // A success that logged nothing is most of a busy function's results: it crosses as its duration
      // alone, and the host takes it without the full parse of a result and its logs.
      if (isPlain(result, sink)) out += `${k ? ',' : ''}[${i},${numberText(result.durationMs)}]`;
      else out += `${k ? ',' : ''}[${i},${encodeResult(result)},${encodeSink(sink)}]`;
      mapDelete(sinks, id);
      append(ended, id);
    }
    fetchesEnded(ended);
    host.deliver.applyIgnored(undefined, [request.callId, `${out}]`], copyArguments);
  };
  let finished = 0;
  const finish = (i, result) => {
    if (mapGet(results, i) !== undefined) return;
    mapSet(results, i, result);
    if (++finished === count) mapDelete(calls, request.callId);
    append(ready, i);
    if (!flushQueued) {
      flushQueued = true;
      whenSettled(resolved(undefined), flush);
    }
  };
  const expireCall = () => {
    for (let i = 0; i < count; i++) {
      if (mapGet(results, i) !== undefined) continue;
      const result = failed('Timeout', `the invocation did not finish within ${request.deadlineMs} ms`);
      result.durationMs = request.deadlineMs;
      finish(i, result);
    }
  };
  mapSet(calls, request.callId, expireCall);
  const track = (i, start, promise) =>
    whenSettled(
      promise,
      (value) => {
        let result;
        try {
          result = request.batch ? batchResult(value, request.events.length) : succeeded();
        } catch (err) {
          result = classify(err);
        }
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
      const receiver = receiverFor(ids[0]);
      p = resolved(apply(handler, receiver, [request.events, jsonParse(host.config.settings)]));
    } catch (err) {
      p = rejected(err);
    }
    track(0, started, p);
  } else {
    for (let i = 0; i < count; i++) {
      setCurrent(ids[i]);
      const start = dateNow();
      let p;
      try {
        const receiver = receiverFor(ids[i]);
        p = resolved(runSingle(request.events[i], receiver));
      } catch (err) {
        p = rejected(err);
      }
      track(i, start, p);
    }
  }
}

/**
 * The deadline of call `callId` has come (the host's timer, counted from when the isolate took the call
 * up): its invocations still pending time out here, and the isolate stays. A CPU loop never lets this
 * run; the host's backstop kills the isolate then.
 */
export function expire(callId) {
  const expireCall = mapGet(calls, callId);
  if (expireCall !== undefined) expireCall();
}

export function setHandlers(table) {
  handlers = objectCreate(null);
  const names = objectKeys(table);
  for (let i = 0; i < names.length; i++) {
    if (typeof table[names[i]] === 'function') handlers[names[i]] = table[names[i]];
  }
  return objectKeys(handlers);
}
