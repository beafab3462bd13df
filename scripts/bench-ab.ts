// Interleaved A/B runs of benchmarks: the same `npm run <bench>` in a base tree and in this one, taking
// turns, so a neighbour's burst or a warming machine hits both sides alike. Each benchmark's last line is
// its JSON figures; this prints, for every numeric figure, the median and range of each side and the
// change, and ends with all of it as JSON. It is how the "no more than 10 % worse" bars are checked.
//
//   git worktree add --detach ../base <commit> && cp -a node_modules ../base/ && (cd ../base && npm run build)
//   npm run bench:ab -- --base ../base --runs 5 bench:runner bench:sandbox
//
// The benchmarks' own variables (BENCH_EVENTS, BENCH_ROUNDS, ...) pass through to both sides.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = `usage: npm run bench:ab -- --base <dir> [--runs N] <npm bench script>...

  --base <dir>  a checkout of the commit to compare against (built, with node_modules)
  --runs N      runs of each benchmark on each side (default 5; medians need an odd number)

Runs each benchmark N times on each side, alternating base and this tree, and prints every numeric
figure of the benchmarks' last-line JSON as base median (range), this tree's median (range) and the
change of the medians. The load average at each start is printed: on a shared machine, compare CPU
per event rather than throughput.`;

type Figures = Record<string, number>;

function fail(message: string): never {
  console.error(`bench:ab: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function options() {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (err) {
    fail((err as Error).message);
  }
  if (parsed.values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const base = parsed.values.base;
  if (!base) fail('--base is required');
  const baseDir = resolve(base);
  if (!existsSync(join(baseDir, 'package.json'))) fail(`${baseDir} has no package.json`);
  const runs = Number(parsed.values.runs ?? 5);
  if (!Number.isInteger(runs) || runs < 1)
    fail(`--runs must be a positive integer, not ${parsed.values.runs}`);
  const benches = parsed.positionals;
  if (benches.length === 0) fail('name at least one benchmark script, e.g. bench:runner');
  const scripts = (dir: string) =>
    (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).scripts ?? {}) as Record<string, string>;
  for (const [side, dir] of [
    ['base', baseDir],
    ['this tree', process.cwd()],
  ] as const) {
    const missing = benches.filter((b) => !(b in scripts(dir)));
    if (missing.length) fail(`${side} (${dir}) has no npm script ${missing.join(', ')}`);
  }
  return { baseDir, runs, benches };
}

function parse() {
  return parseArgs({
    options: { base: { type: 'string' }, runs: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
}

/** Runs one benchmark; its last line's numeric figures. The output is kept only for a failure. */
function runBench(dir: string, bench: string): Promise<Figures> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('npm', ['run', '-s', bench], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trimEnd().split('\n').at(-1) ?? '';
      let json: unknown;
      try {
        json = JSON.parse(last);
      } catch {
        json = undefined;
      }
      if (code !== 0 || json === null || typeof json !== 'object') {
        reject(new Error(`${bench} in ${dir} exited with ${code}; its output ended:\n${out.slice(-2000)}`));
        return;
      }
      const figures: Figures = {};
      for (const [k, v] of Object.entries(json)) if (typeof v === 'number') figures[k] = v;
      resolvePromise(figures);
    });
  });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const round = (v: number) => Number(v.toPrecision(4));

const { baseDir, runs, benches } = options();
const results: Record<string, { base: Figures[]; head: Figures[] }> = {};
const loads: number[] = [];
for (let run = 1; run <= runs; run++) {
  for (const bench of benches) {
    results[bench] ??= { base: [], head: [] };
    for (const side of ['base', 'head'] as const) {
      const load = loadavg()[0]!;
      loads.push(round(load));
      const started = performance.now();
      let figures: Figures;
      try {
        figures = await runBench(side === 'base' ? baseDir : process.cwd(), bench);
      } catch (err) {
        console.error(`bench:ab: run ${run}/${runs}: ${(err as Error).message}`);
        process.exit(1);
      }
      results[bench][side].push(figures);
      const s = ((performance.now() - started) / 1000).toFixed(0);
      console.log(`run ${run}/${runs} ${bench} ${side}: ${s} s, load average ${load.toFixed(2)} at start`);
    }
  }
}

const summary: Record<string, Record<string, unknown>> = {};
for (const [bench, { base, head }] of Object.entries(results)) {
  console.log(`\n${bench}: median (range) of ${runs} runs each`);
  const keys = Object.keys(head[0] ?? {}).filter((k) => base.every((f) => k in f));
  summary[bench] = {};
  for (const key of keys) {
    const b = base.map((f) => f[key]!);
    const h = head.map((f) => f[key]!);
    const [mb, mh] = [median(b), median(h)];
    const change = mb === 0 ? null : round(((mh - mb) / Math.abs(mb)) * 100);
    const range = (v: number[]) => `${round(Math.min(...v))}–${round(Math.max(...v))}`;
    console.log(
      `  ${key.padEnd(36)} base ${String(round(mb)).padStart(9)} (${range(b)})  this ${String(round(mh)).padStart(9)} (${range(h)})  ${change === null ? '' : `${change > 0 ? '+' : ''}${change} %`}`,
    );
    summary[bench][key] = { base: round(mb), head: round(mh), change_pct: change };
  }
  const only = Object.keys(head[0] ?? {}).filter((k) => !keys.includes(k));
  if (only.length) console.log(`  (only in this tree: ${only.join(', ')})`);
}
console.log(JSON.stringify({ runs, load_averages: loads, benchmarks: summary }));
