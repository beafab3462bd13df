// scripts/bench-ab.ts: interleaved runs of the same npm benchmark in a base tree and in this one, medians of
// every numeric figure of their last-line JSON. The two "benchmarks" here are tiny npm scripts that print a
// figure from a file they count their runs in, so the runs' order and the medians are known exactly.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanEnv, repoRoot } from '../helpers/dfn.js';

const run = promisify(execFile);
const dirs: string[] = [];

/**
 * A tree whose `bench:x` prints `{"cpu_us": <figures[k]>, "label": "…"}` on its k-th run (and appends its
 * side's name to a shared log, so the interleaving shows), and whose `bench:broken` fails.
 */
function tree(side: string, figures: number[], log: string): string {
  const dir = mkdtempSync(join(tmpdir(), `dfn-bench-ab-${side}-`));
  dirs.push(dir);
  const script = `
const fs = require('node:fs');
const n = Number(fs.existsSync('runs') ? fs.readFileSync('runs', 'utf8') : 0);
fs.writeFileSync('runs', String(n + 1));
fs.appendFileSync(${JSON.stringify(log)}, ${JSON.stringify(side)} + '\\n');
console.log('some progress output');
console.log(JSON.stringify({ cpu_us: ${JSON.stringify(figures)}[n], label: 'not a number' }));`;
  writeFileSync(join(dir, 'bench.js'), script);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name: side,
      private: true,
      scripts: { 'bench:x': 'node bench.js', 'bench:broken': 'node -e "console.log(1); process.exit(3)"' },
    }),
  );
  return dir;
}

async function benchAb(cwd: string, args: string[]) {
  return run(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), join(repoRoot, 'scripts/bench-ab.ts'), ...args],
    {
      cwd,
      env: cleanEnv(),
      timeout: 120_000,
    },
  ).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('bench:ab', () => {
  it('takes turns, base first, and gives the medians, ranges and change of each figure', async () => {
    const log = join(mkdtempSync(join(tmpdir(), 'dfn-bench-ab-log-')), 'order');
    dirs.push(log.slice(0, -'/order'.length));
    const base = tree('base', [10, 30, 20], log);
    const head = tree('head', [12, 11, 40], log);
    const { code, stdout } = await benchAb(head, ['--base', base, '--runs', '3', 'bench:x']);
    expect(code).toBe(0);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      'base',
      'head',
      'base',
      'head',
      'base',
      'head',
    ]);
    const result = JSON.parse(stdout.trimEnd().split('\n').at(-1)!);
    expect(result.runs).toBe(3);
    expect(result.load_averages).toHaveLength(6);
    // Medians 20 and 12: -40 %. The non-numeric figure is left out.
    expect(result.benchmarks['bench:x']).toEqual({ cpu_us: { base: 20, head: 12, change_pct: -40 } });
    expect(stdout).toMatch(/cpu_us\s+base\s+20 \(10–30\)\s+this\s+12 \(11–40\)\s+-40 %/);
  });

  it("stops with the failing run's output when a benchmark fails", async () => {
    const log = join(tmpdir(), `dfn-bench-ab-unused-${process.pid}`);
    const base = tree('base', [1], log);
    const head = tree('head', [1], log);
    const { code, stderr } = await benchAb(head, ['--base', base, '--runs', '1', 'bench:broken']);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/bench:broken in .*dfn-bench-ab-base-\S+ exited with 3; its output ended:\n1/);
    rmSync(log, { force: true });
  });

  it('refuses bad arguments with exit 2 and the usage', async () => {
    const head = tree('head', [1], join(tmpdir(), 'unused'));
    for (const [args, message] of [
      [['bench:x'], '--base is required'],
      [['--base', '/nonexistent-dir', 'bench:x'], '/nonexistent-dir has no package.json'],
      [['--base', head, '--runs', '0', 'bench:x'], '--runs must be a positive integer, not 0'],
      [['--base', head], 'name at least one benchmark script'],
      [['--base', head, 'bench:missing'], 'has no npm script bench:missing'],
    ] as const) {
      const { code, stderr } = await benchAb(head, [...args]);
      expect([args, code]).toEqual([args, 2]);
      expect(stderr).toContain(message);
      expect(stderr).toContain('usage: npm run bench:ab');
    }
  });
});
