// The README's list of globals says what user code gets: every global the sandbox adds to V8's own is
// named there, and every name that opens a line of the list exists (console is V8's, replaced).

import { readFileSync } from 'node:fs';
import { createContext, runInContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { sandboxes } from '../helpers/sandbox.js';

const { logsOf } = sandboxes();

function readmeList(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('What user code gets');
  const end = readme.indexOf('\n\n', readme.indexOf('\n- ', start) + 1);
  expect(start).toBeGreaterThan(0);
  return readme.slice(start, end);
}

describe("the README's list of globals", () => {
  it('names every global the sandbox adds, and each line opens with ones that exist', async () => {
    // V8's own globals, as a bare context has them.
    const builtins = new Set(
      runInContext('Object.getOwnPropertyNames(globalThis)', createContext()) as string[],
    );
    const [json] = await logsOf('console.log(JSON.stringify(Object.getOwnPropertyNames(globalThis)));');
    // onTrack is the function's own handler (logsOf's), not a global of the sandbox.
    const present = JSON.parse(json!) as string[];
    const added = present.filter((n) => !builtins.has(n) && n !== 'onTrack');
    expect(added.length).toBeGreaterThan(10);
    const list = readmeList();
    const named = new Set([...list.matchAll(/`([A-Za-z_$][\w$]*)/g)].map((m) => m[1]!));
    expect(added.filter((n) => !named.has(n))).toEqual([]);
    // The names each line opens with: `a`, `b` and `c` … up to the first word outside backticks.
    const opening = list
      .split('\n- ')
      .slice(1)
      .flatMap((line) => [
        ...(/^(?:`[^`]+`(?:, | and |\/)?)+/.exec(line)?.[0] ?? '').matchAll(/`([A-Za-z_$][\w$]*)/g),
      ])
      .map((m) => m[1]!);
    expect(opening.length).toBeGreaterThan(10);
    expect(opening.filter((n) => !present.includes(n))).toEqual([]);
  });
});
