// Redaction of sensitive setting values and credentials wherever invocation output could show them
// (console lines, error messages, request URLs and headers): in the sandbox, and again where the runner
// writes records and dead letters.

const REDACTED = '[redacted]';
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key']);

export class Redactor {
  private readonly values: string[];

  constructor(sensitiveValues: readonly string[]) {
    // Longest first, so a secret that contains another is replaced whole.
    this.values = [...new Set(sensitiveValues.filter((v) => typeof v === 'string' && v.length > 0))].sort(
      (a, b) => b.length - a.length,
    );
  }

  text(s: string): string {
    let out = s;
    for (const v of this.values) if (out.includes(v)) out = out.split(v).join(REDACTED);
    return out;
  }

  lines(lines: readonly string[]): string[] {
    return lines.map((l) => this.text(l));
  }

  headers(pairs: readonly [string, string][]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of pairs) {
      const key = String(name).toLowerCase();
      out[key] = CREDENTIAL_HEADERS.has(key) ? REDACTED : this.text(String(value));
    }
    return out;
  }
}
