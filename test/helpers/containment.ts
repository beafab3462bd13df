// Containment cases: a hostile onTrack, then a benign onIdentify that must succeed right after, with the
// test process's RSS (the host side of the sandbox runs in it) measured around the hostile part.

import { expect } from 'vitest';
import type { FunctionSandbox, InvocationReport, SandboxOptions } from '../../sandbox/index.js';

export const BENIGN = `
let good = 0;
async function onIdentify(event) { good++; console.log('good', good, event.userId); }
`;

/** onTrack runs `body`; onIdentify is the benign handler. */
export function hostileSource(body: string, prelude = ''): string {
  return `${BENIGN}\n${prelude}\nasync function onTrack(event, settings) {\n${body}\n}`;
}

export function rssMb(): number {
  return process.memoryUsage().rss / 1024 / 1024;
}

/** Host timers alive in this process (Node's view of its own event loop). */
export function hostTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

export async function expectBenignDelivered(sb: FunctionSandbox): Promise<InvocationReport> {
  const [next] = await sb.invoke([{ type: 'identify', userId: 'after' }]);
  expect(next!.outcome).toEqual({ outcome: 'success' });
  expect(next!.logs.at(-1)).toMatch(/^good \d+ after$/);
  return next!;
}

export type Load = (source: string, options?: SandboxOptions) => Promise<FunctionSandbox>;
