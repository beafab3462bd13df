// What the in-isolate dispatcher sends back as a micro-batch's invocations settle, checked on the host:
// user code shares the isolate with the dispatcher and may forge or inflate its output, so every field is
// validated, sizes are checked before parsing, and console output is redacted first and then cut to the
// byte limit.

import { BOUNDS } from './bounds.js';
import { cutChars, cutUtf8, type Redactor } from './redact.js';

/** One invocation's result as the dispatcher reports it. */
export interface RawResult {
  ok: boolean;
  errorClass?: string;
  message?: string;
  /** The isolate cut the message (it may end in the head of a secret). */
  messageCut?: boolean;
  durationMs?: number;
  statuses?: [number, string][];
}

export interface RawInvocation {
  result: RawResult;
  /** Console lines, redacted and within the byte limit. */
  logs: string[];
}

/** The longest output a micro-batch of `count` invocations (and `statuses` batch entries) can honestly have. */
export function maxOutputChars(count: number, statuses: number, logBytes: number): number {
  // JSON escapes a character in at most 6 (\u0000); a log line's character is at most 3 bytes of UTF-8.
  const perInvocation = 6 * (logBytes * BOUNDS.rawLogFactor + BOUNDS.errorMessageChars) + 1024;
  return 64 * 1024 + count * perInvocation + statuses * (6 * BOUNDS.errorMessageChars + 64);
}

/**
 * Takes one delivery of finished invocations from the dispatcher, `[[index, result, logs] or
 * [index, durationMs], ...]`, into
 * `outputs` (the first result for an index wins) and returns the indices it filled. A delivery that is
 * too large or not that shape (user code could disturb the dispatcher) ends every invocation still open
 * as malformed.
 */
export function acceptDelivery(
  out: unknown,
  outputs: (RawInvocation | undefined)[],
  statuses: number,
  logBytes: number,
  redactor: Redactor,
): number[] {
  const filled: number[] = [];
  const malformed = (why: string) => {
    for (let i = 0; i < outputs.length; i++) {
      if (outputs[i]) continue;
      const message = `the sandbox returned a malformed result (${why})`;
      outputs[i] = { result: { ok: false, errorClass: 'Error', message }, logs: [] };
      filled.push(i);
    }
    return filled;
  };
  if (typeof out !== 'string') return malformed('not a string');
  if (out.length > maxOutputChars(outputs.length, statuses, logBytes)) return malformed('too large');
  let done: unknown;
  try {
    done = JSON.parse(out);
  } catch {
    return malformed('invalid JSON');
  }
  if (!Array.isArray(done) || done.length > outputs.length || !done.every(isDoneEntry)) {
    return malformed('wrong shape');
  }
  for (const entry of done as ([number, number] | [number, unknown, unknown])[]) {
    const i = entry[0];
    if (i >= outputs.length || outputs[i]) continue;
    outputs[i] =
      entry.length === 2
        ? { result: { ok: true, durationMs: entry[1] }, logs: [] }
        : { result: sanitizeResult(entry[1], statuses), logs: boundLogs(entry[2], logBytes, redactor) };
    filled.push(i);
  }
  return filled;
}

/**
 * `[index, result, logs]`, or `[index, durationMs]` for a success with nothing else to say (the common
 * case, so it is checked here in full and needs no sanitizing).
 */
function isDoneEntry(entry: unknown): boolean {
  if (!Array.isArray(entry) || !Number.isSafeInteger(entry[0]) || entry[0] < 0) return false;
  if (entry.length === 3) return true;
  return entry.length === 2 && typeof entry[1] === 'number' && entry[1] >= 0;
}

function sanitizeResult(r: unknown, statuses: number): RawResult {
  if (typeof r !== 'object' || r === null)
    return { ok: false, errorClass: 'Error', message: 'malformed result' };
  const v = r as Record<string, unknown>;
  const result: RawResult = {
    ok: v.ok === true,
    durationMs: typeof v.durationMs === 'number' && v.durationMs >= 0 ? v.durationMs : 0,
  };
  if (typeof v.errorClass === 'string') result.errorClass = cutChars(v.errorClass, 64);
  if (typeof v.message === 'string') {
    result.message = v.message;
    result.messageCut = v.messageCut === true || v.message.length > BOUNDS.errorMessageChars;
  }
  if (Array.isArray(v.statuses)) {
    if (v.statuses.length !== statuses) {
      return {
        ok: false,
        errorClass: 'Error',
        message: 'the sandbox returned a malformed result (statuses)',
      };
    }
    result.statuses = v.statuses.map((s) =>
      Array.isArray(s) ? [Number(s[0]) || 0, String(s[1] ?? '')] : [0, 'malformed status entry'],
    );
  }
  return result;
}

/**
 * An invocation's console lines: redacted, then cut to `logBytes` bytes of UTF-8 (each line counts its
 * newline), marked when cut here or already in the isolate.
 */
export function boundLogs(raw: unknown, logBytes: number, redactor: Redactor): string[] {
  const entry = (raw ?? {}) as { lines?: unknown; cut?: unknown };
  const lines = Array.isArray(entry.lines) ? entry.lines : [];
  const out: string[] = [];
  let bytes = 0;
  let cut = entry.cut === true;
  for (let i = 0; i < lines.length; i++) {
    const line = redactor.text(String(lines[i]));
    const size = Buffer.byteLength(line) + 1;
    if (bytes + size <= logBytes) {
      out.push(i === lines.length - 1 && cut ? redactor.withoutSecretHead(line) : line);
      bytes += size;
      continue;
    }
    const room = logBytes - bytes - 1;
    const head = room > 0 ? redactor.withoutSecretHead(cutUtf8(line, room)) : '';
    if (head) out.push(head);
    cut = true;
    break;
  }
  if (cut) out.push(`[log truncated: output is capped at ${logBytes} bytes per invocation]`);
  return out;
}
