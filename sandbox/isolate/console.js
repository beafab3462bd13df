// console for user code: output captured per invocation, capped in bytes, as Segment's test console.
// Lines go to the sink of the invocation that is running (invocation.js).

import { Headers } from './headers.js';
import { host } from './host.js';
import { jsonStringify, MapCtor, objectFreeze, StringCtor } from './intrinsics.js';
import { current } from './invocation.js';
import { URL, URLSearchParams } from './url.js';

export const sinks = new MapCtor(); // invocation id → { lines, bytes, truncated }
export const newSink = () => ({ lines: [], bytes: 0, truncated: false });
sinks.set(0, newSink());

function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
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
  if (value instanceof Error) return value.stack || `${value.name}: ${value.message}`;
  if (value instanceof URL || value instanceof URLSearchParams) return `${value.constructor.name} ${value}`;
  if (value instanceof Headers) return `Headers ${jsonStringify(Object.fromEntries(value))}`;
  try {
    const json = jsonStringify(value);
    return json === undefined ? StringCtor(value) : json;
  } catch {
    return '[Circular or unserializable object]';
  }
}

export function writeLog(level, args) {
  const sink = sinks.get(current);
  if (!sink || sink.truncated) return;
  let line = '';
  for (let i = 0; i < args.length; i++) {
    let part;
    try {
      part = describe(args[i], 0);
    } catch {
      part = '[unprintable]';
    }
    line += (i === 0 ? '' : ' ') + part;
  }
  if (level !== 'log') line = `${level}: ${line}`;
  const bytes = utf8Length(line) + 1;
  if (sink.bytes + bytes <= host.config.logBytes) {
    sink.lines.push(line);
    sink.bytes += bytes;
    return;
  }
  const room = host.config.logBytes - sink.bytes - 1; // the cut line's own newline counts too
  if (room > 0) sink.lines.push(line.slice(0, room));
  sink.lines.push(`[log truncated: output is capped at ${host.config.logBytes} bytes per invocation]`);
  sink.truncated = true;
}

export const console = objectFreeze({
  log: (...a) => writeLog('log', a),
  info: (...a) => writeLog('info', a),
  debug: (...a) => writeLog('debug', a),
  warn: (...a) => writeLog('warn', a),
  error: (...a) => writeLog('error', a),
  trace: (...a) => writeLog('trace', a),
});

/** Console output of the function's top-level code, taken once it has loaded. */
export function takeLoadLogs() {
  const lines = sinks.get(0).lines;
  sinks.set(0, newSink());
  return jsonStringify(lines);
}
