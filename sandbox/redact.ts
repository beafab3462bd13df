// Redaction of sensitive setting values and credentials wherever invocation output could show them
// (console lines, error messages, request URLs and headers): in the sandbox, and again where the runner
// writes records and dead letters. A value is found as written and in the forms code commonly gives it
// (JSON-escaped once or twice, percent- or form-encoded), and text is redacted before it is cut, so a
// cut never leaves a secret's head behind.

const REDACTED = '[redacted]';
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key']);

/** The spellings of a value that output can carry. */
function formsOf(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const forms = [value, json, JSON.stringify(json).slice(1, -1)];
  try {
    const percent = encodeURIComponent(value);
    forms.push(percent, percent.replace(/%20/g, '+'), encodeURI(value));
    // Percent-encoding is case-insensitive in its hex digits.
    forms.push(percent.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
  } catch {
    // a lone surrogate cannot be percent-encoded: it has no such form
  }
  return forms;
}

export class Redactor {
  private readonly forms: string[];

  constructor(sensitiveValues: readonly string[]) {
    const values = new Set(sensitiveValues.filter((v) => typeof v === 'string' && v.length > 0));
    const forms = new Set<string>();
    for (const v of values) for (const f of formsOf(v)) forms.add(f);
    // Longest first, so a secret that contains another is replaced whole.
    this.forms = [...forms].sort((a, b) => b.length - a.length);
  }

  text(s: string): string {
    let out = s;
    for (const f of this.forms) if (out.includes(f)) out = out.split(f).join(REDACTED);
    return out;
  }

  /**
   * Redacted, then cut to `max` characters (marked with …). `cutBefore` says the text was already cut
   * upstream (the isolate bounds what it sends): a cut end may hold the head of a secret, which is dropped.
   */
  bounded(s: string, max: number, cutBefore = false): string {
    const redacted = this.text(s);
    if (redacted.length <= max && !cutBefore) return redacted;
    const kept = redacted.length <= max ? redacted : cutChars(redacted, max - 1);
    return `${this.withoutSecretHead(kept)}…`;
  }

  /** `s` without a trailing part that is the beginning of a sensitive value (in any of its forms). */
  withoutSecretHead(s: string): string {
    let cut = 0;
    for (const f of this.forms) {
      for (let n = Math.min(f.length - 1, s.length); n > cut; n--) {
        if (s.endsWith(f.slice(0, n))) {
          cut = n;
          break;
        }
      }
    }
    return cut ? s.slice(0, s.length - cut) : s;
  }

  lines(lines: readonly string[]): string[] {
    return lines.map((l) => this.text(l));
  }

  /**
   * Headers as a record, credentials redacted. Made with Object.fromEntries, which defines each name as an
   * own property (`__proto__` too), where a record filled key by key and copied cost twice as much (~2.5 µs
   * a request's two header lists).
   */
  headers(pairs: readonly [string, string][], maxChars = Number.POSITIVE_INFINITY): Record<string, string> {
    const entries = new Array<[string, string]>(pairs.length);
    for (let i = 0; i < pairs.length; i++) {
      const [name, value] = pairs[i]!;
      const key = this.bounded(String(name).toLowerCase(), Math.min(maxChars, 256));
      entries[i] = [key, CREDENTIAL_HEADERS.has(key) ? REDACTED : this.bounded(String(value), maxChars)];
    }
    return Object.fromEntries(entries);
  }
}

/** At most `max` UTF-16 units, never ending in half a surrogate pair. */
export function cutChars(s: string, max: number): string {
  if (s.length <= max) return s;
  const end = max > 0 && /[\uD800-\uDBFF]/.test(s[max - 1]!) ? max - 1 : max;
  return s.slice(0, Math.max(0, end));
}

/** At most `maxBytes` bytes of UTF-8, never ending in part of a character. */
export function cutUtf8(s: string, maxBytes: number): string {
  if (s.length * 3 <= maxBytes || Buffer.byteLength(s) <= maxBytes) return s;
  const bytes = Buffer.from(s);
  let end = Math.max(0, maxBytes);
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString();
}
