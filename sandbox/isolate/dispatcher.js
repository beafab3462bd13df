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
  const ids = request.ids;
  const results = new Array(ids.length);
  for (const id of ids) sinks.set(id, newSink());
  const started = dateNow();
  const runs = [];
  const track = (i, start, promise) =>
    whenSettled(
      promise,
      (value) => {
        results[i] = request.batch ? batchResult(value, request.events.length) : { ok: true };
        results[i].durationMs = dateNow() - start;
      },
      (err) => {
        results[i] = classify(err);
        results[i].durationMs = dateNow() - start;
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
    runs.push(track(0, started, p));
  } else {
    for (let i = 0; i < ids.length; i++) {
      setCurrent(ids[i]);
      const start = dateNow();
      let p;
      try {
        p = PromiseCtor.resolve(runSingle(request.events[i]));
      } catch (err) {
        p = PromiseCtor.reject(err);
      }
      runs.push(track(i, start, p));
    }
  }
  // One deadline for the whole micro-batch: invocations still pending when it passes time out here.
  // (A CPU loop never lets this fire; the host's wall-clock backstop disposes the isolate then.)
  const deadline = sleep(Math.max(0, request.deadlineMs - (dateNow() - started)));
  // Results go back through hostDeliver rather than as this call's result: isolated-vm fails a call
  // when user code leaves a promise rejection unhandled, and that must not fail the whole micro-batch.
  whenSettled(PromiseCtor.race([PromiseCtor.all(runs), deadline]), () => {
    const logs = [];
    for (let i = 0; i < ids.length; i++) {
      if (results[i] === undefined) {
        results[i] = {
          ok: false,
          errorClass: 'Timeout',
          message: `the invocation did not finish within ${request.deadlineMs} ms`,
          durationMs: dateNow() - started,
        };
      }
      logs.push(sinks.get(ids[i]).lines);
      sinks.delete(ids[i]);
    }
    host.deliver.applyIgnored(undefined, [request.callId, jsonStringify({ results, logs })], {
      arguments: { copy: true },
    });
  });
}

export function setHandlers(table) {
  handlers = {};
  for (const name of objectKeys(table)) if (typeof table[name] === 'function') handlers[name] = table[name];
  return objectKeys(handlers);
}
