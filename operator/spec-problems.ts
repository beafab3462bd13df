// A spec checked with its zod schema (the checks the API server cannot make, api/crd/refinements.ts), each
// problem one line naming the field, as conditions show them.

import type { z } from 'zod';

export interface SpecProblem {
  /** `spec.settings[0].default` */
  field: string;
  message: string;
}

function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, k) => (typeof k === 'number' ? `${out}[${k}]` : `${out}.${String(k)}`),
    'spec',
  );
}

/** The spec parsed with defaults applied, or every problem found. */
export function parseSpec<S extends z.ZodType>(
  schema: S,
  spec: unknown,
): { ok: true; spec: z.output<S> } | { ok: false; problems: SpecProblem[] } {
  const result = schema.safeParse(spec ?? {});
  if (result.success) return { ok: true, spec: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) => ({ field: fieldPath(issue.path), message: issue.message })),
  };
}

export const formatProblems = (problems: readonly SpecProblem[]) =>
  problems.map((p) => `${p.field}: ${p.message}`).join('; ');
