// console for user code: output captured per invocation, as Segment's test console. The isolate keeps a
// bounded raw amount (config.bounds.rawLogFactor × logBytes); the host redacts it and only then cuts it
// to logBytes, so a cut never shows the head of a secret. Lines go to the sink of the running invocation.

import { inspectBuffer, isNodeBuffer } from './buffer.js';
import { Headers } from './headers.js';
import { host } from './host.js';
import {
  append,
  boundedText,
  charCodeAt,
  ErrorCtor,
  jsonStringify,
  MapCtor,
  mapGet,
  mapSet,
  newList,
  objectFreeze,
  StringCtor,
  stringSlice,
} from './intrinsics.js';
import { running } from './invocation.js';
import { URL, URLSearchParams } from './url.js';

export const sinks = new MapCtor(); // invocation id → { lines, bytes, truncated }
// Every field its own property: a read never reaches a getter user code put on Object.prototype.
export const newSink = () => ({ lines: newList(), bytes: 0, truncated: false });
mapSet(sinks, 0, newSink());

function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = charCodeAt(s, i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function describe(value, depth) {
  if (typeof value === 'string') return depth === 0 ? value : jsonStringify(value);
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `[Function: ${value.name || 'anonymous'}]`;
  if (typeof value === 'symbol' || typeof value === 'bigint') return StringCtor(value);
  if (isNodeBuffer(value)) return inspectBuffer(value);
  if (value instanceof ErrorCtor) return StringCtor(value.stack || `${value.name}: ${value.message}`);
  if (value instanceof URL || value instanceof URLSearchParams) return `${value.constructor.name} ${value}`;
  if (value instanceof Headers) return `Headers ${jsonStringify(Object.fromEntries(value))}`;
  try {
    const json = jsonStringify(value);
    return json === undefined ? StringCtor(value) : json;
  } catch {
    return '[Circular or unserializable object]';
  }
}

/** `entry`: the console method user code called (see running()); writeLog itself for the sandbox's own lines. */
export function writeLog(level, args, entry = writeLog) {
  const sink = mapGet(sinks, running(entry));
  if (!sink || sink.truncated) return;
  const { logPartChars, rawLogFactor } = host.config.bounds;
  const budget = host.config.logBytes * rawLogFactor;
  let line = '';
  for (let i = 0; i < args.length; i++) {
    let part;
    try {
      part = StringCtor(describe(args[i], 0));
    } catch {
      part = '[unprintable]';
    }
    part = boundedText(part, logPartChars);
    line += (i === 0 ? '' : ' ') + part;
    if (line.length > budget) break;
  }
  if (level !== 'log') line = `${level}: ${line}`;
  const bytes = utf8Length(line) + 1;
  if (sink.bytes + bytes <= budget) {
    append(sink.lines, line);
    sink.bytes += bytes;
    return;
  }
  // Over the raw budget: keep a cut (the host cuts again, exactly, after redaction) and stop.
  const room = budget - sink.bytes - 1;
  if (room > 0) append(sink.lines, stringSlice(line, 0, room));
  sink.truncated = true;
}

function method(level) {
  const log = (...a) => writeLog(level, a, log);
  return log;
}

export const console = objectFreeze({
  log: method('log'),
  info: method('info'),
  debug: method('debug'),
  warn: method('warn'),
  error: method('error'),
  trace: method('trace'),
});

/** A sink's lines as the host reads them (dispatch-output.ts's boundLogs), from primitives only. */
export function encodeSink(sink) {
  let s = '{"lines":[';
  for (let i = 0; i < sink.lines.length; i++) s += `${i ? ',' : ''}${jsonStringify(sink.lines[i])}`;
  return `${s}],"cut":${sink.truncated ? 'true' : 'false'}}`;
}

/** Console output of the function's top-level code, taken once it has loaded. */
export function takeLoadLogs() {
  const sink = mapGet(sinks, 0);
  mapSet(sinks, 0, newSink());
  return encodeSink(sink);
}
