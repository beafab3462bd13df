// Removes sensitive setting values from text that leaves the sandbox (records, dead letters, logs).
// The sandbox redacts too; this is the second line, applied where the runner writes things down.

export const REDACTED = '[redacted]';

export type Redactor = (text: string) => string;

export function createRedactor(sensitiveValues: readonly string[]): Redactor {
  // Longest first, so a secret containing another secret is removed whole.
  const values = [...new Set(sensitiveValues.filter((v) => v.length > 0))].sort(
    (a, b) => b.length - a.length,
  );
  if (values.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const v of values) if (out.includes(v)) out = out.split(v).join(REDACTED);
    return out;
  };
}
