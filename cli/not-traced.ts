// The line `dfn test` and `dfn deliveries` print for requests an invocation made past its trace bounds:
// counted by the sandbox, not traced, so a long list of requests never looks complete when it is not.

import { BOUNDS } from '../sandbox/index.js';

const mib = (bytes: number) => `${bytes / (1024 * 1024)} MiB`;

export function notTracedText(count: number): string {
  return (
    `${count} more request${count === 1 ? '' : 's'}, not traced (at most ${BOUNDS.tracesPerInvocation} are, ` +
    `per invocation, within ${mib(BOUNDS.traceBytesPerInvocation)} of them and ` +
    `${mib(BOUNDS.traceBytesPerIsolate)} for all invocations at once)`
  );
}
