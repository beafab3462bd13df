// The line `dfn test` and `dfn deliveries` print for requests an invocation made past its trace bound:
// counted by the sandbox, not traced, so a long list of requests never looks complete when it is not.

import { BOUNDS } from '../sandbox/index.js';

export function notTracedText(count: number): string {
  return `${count} more request${count === 1 ? '' : 's'}, not traced (at most ${BOUNDS.tracesPerInvocation} are, per invocation)`;
}
