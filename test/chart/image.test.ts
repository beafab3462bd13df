// The dfn image, as far as it can be checked without a Docker engine: the runtime stage of the Dockerfile is
// assembled into a directory from its own COPY lines (production dependencies from `npm ci --omit=dev`, the
// build output), and what the chart runs — `dfn gateway`, `dfn operator`, `dfn runner` — starts from there
// through the image's ENTRYPOINT, with a working sandbox; the image runs as a non-root USER.
//
// Not reproduced here: the deps stage compiles isolated-vm for the image's Node; offline, this test takes the
// addon the set-up compiled for this machine's Node (node_modules/isolated-vm/out) instead.

import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, repoRoot } from '../helpers/dfn.js';

interface Stage {
  name: string;
  base: string;
  workdir: string;
  copies: { from?: string; sources: string[]; dest: string }[];
  runs: string[];
  user?: string;
  entrypoint?: string[];
}

/** The Dockerfile's stages with what this test needs of them (WORKDIR, COPY, USER, ENTRYPOINT). */
function parseDockerfile(text: string): { stages: Stage[]; args: Record<string, string> } {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  // Continuation lines joined, comments dropped.
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const [instruction, ...rest] = line.split(/\s+/);
    const operand = line.slice(instruction!.length).trim();
    const stage = stages.at(-1);
    switch (instruction!.toUpperCase()) {
      case 'ARG': {
        const [k, v] = operand.split('=');
        if (!stage) args[k!] = v ?? '';
        break;
      }
      case 'FROM': {
        const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(operand)!;
        const base = m[1]!.replace(/\$\{(\w+)\}/g, (_, k) => args[k] ?? '');
        // A stage built on an earlier one starts where it ended (its WORKDIR, its files and commands).
        const parent = stages.find((x) => x.name === base);
        stages.push({
          name: m[2] ?? String(stages.length),
          base: parent?.base ?? base,
          workdir: parent?.workdir ?? '/',
          copies: [...(parent?.copies ?? [])],
          runs: [...(parent?.runs ?? [])],
        });
        break;
      }
      case 'WORKDIR':
        stage!.workdir = posix.resolve(stage!.workdir, operand);
        break;
      case 'COPY': {
        const flags = rest.filter((w) => w.startsWith('--'));
        const paths = rest.filter((w) => !w.startsWith('--'));
        const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
        stage!.copies.push({ ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1)! });
        break;
      }
      case 'RUN':
        stage!.runs.push(operand);
        break;
      case 'USER':
        stage!.user = operand;
        break;
      case 'ENTRYPOINT':
        stage!.entrypoint = JSON.parse(operand);
        break;
    }
  }
  return { stages, args };
}

const dockerfile = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.stages.at(-1)!;

function run(argv: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { cwd, env: cleanEnv(), timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err.code as number) ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the Dockerfile', () => {
  it('builds on a current Node LTS, compiles isolated-vm in a build stage and runs as non-root', () => {
    expect(Number(dockerfile.args.NODE_VERSION)).toBeGreaterThanOrEqual(24);
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    const text = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
    const deps = dockerfile.stages.find(
      (s) => s.name === runtime.copies.find((c) => c.dest.includes('node_modules'))?.from,
    );
    expect(deps, 'node_modules comes from a stage of its own').toBeDefined();
    // The compilers live in a build stage only; the runtime stage installs nothing.
    expect(text).toMatch(/apt-get install[^\n]*python3 make g\+\+/);
    const runtimeText = text.slice(text.lastIndexOf('FROM '));
    expect(runtimeText).not.toMatch(/apt-get|npm (ci|install)/);
    expect(runtime.base).toMatch(/slim/);
    // USER is a non-zero numeric UID (Kubernetes' runAsNonRoot can verify only a numeric one).
    const user = runtime.user?.split(':')[0];
    expect(user).toMatch(/^\d+$/);
    expect(Number(user)).not.toBe(0);
    // The same UID the operator gives runner pods and the chart gives its own.
    expect(Number(user)).toBe(65532);
    expect(runtime.entrypoint?.slice(-1)[0]).toMatch(/bin\/dfn\.js$/);
  });
});

describe('the runtime stage, assembled from the Dockerfile', () => {
  let root = '';
  let app = '';

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'dfn-image-'));
    // The deps stage: `npm ci --omit=dev` of the same package files, from npm's cache (no network).
    const deps = join(root, 'deps');
    mkdirSync(deps);
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(repoRoot, f), join(deps, f));
    const ci = await run(
      ['npm', 'ci', '--omit=dev', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'],
      deps,
    );
    if (ci.code !== 0) throw new Error(`npm ci --omit=dev failed: ${ci.stderr}`);
    const addon = 'node_modules/isolated-vm/out';
    cpSync(join(repoRoot, addon), join(deps, addon), { recursive: true });
    // Each stage's files at its WORKDIR: the stage running `npm ci --omit=dev` has them from the npm ci
    // above, the one running `npm run build` from this checkout's build (the same command).
    const stageRoot = (name: string): ((path: string) => string) => {
      const stage = dockerfile.stages.find((x) => x.name === name);
      const at = (dir: string) => (p: string) => join(dir, posix.relative(stage!.workdir, p));
      if (stage?.runs.some((r) => r.includes('npm ci --omit=dev'))) return at(deps);
      if (stage?.runs.some((r) => r.includes('npm run build'))) return at(repoRoot);
      throw new Error(
        `the runtime stage copies from stage ${name}, which this test does not know how to build`,
      );
    };
    app = join(root, 'image', runtime.workdir);
    for (const copy of runtime.copies) {
      const resolveSource = copy.from ? stageRoot(copy.from) : (p: string) => join(repoRoot, p);
      for (const source of copy.sources) {
        const from = resolveSource(source);
        if (!existsSync(from))
          throw new Error(`${source} (from ${copy.from ?? 'the context'}) is missing: run npm run build`);
        const dest = join(root, 'image', posix.resolve(runtime.workdir, copy.dest));
        mkdirSync(dirname(dest), { recursive: true });
        cpSync(from, dest, { recursive: true });
      }
    }
  }, 240_000);

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** The ENTRYPOINT with this machine's node, paths under the assembled root. */
  const entrypoint = () =>
    runtime.entrypoint!.map((a, i) =>
      i === 0 && a === 'node' ? process.execPath : a.startsWith('/') ? join(root, 'image', a) : a,
    );

  it('holds the production dependencies only, and no sources or tests', () => {
    expect(existsSync(join(app, 'node_modules/isolated-vm'))).toBe(true);
    for (const devOnly of ['typescript', 'vitest', 'esbuild', '@biomejs/biome', 'tsx']) {
      expect(existsSync(join(app, 'node_modules', devOnly)), devOnly).toBe(false);
    }
    for (const absent of ['test', 'operator', 'cli', 'src', 'package-lock.json']) {
      expect(existsSync(join(app, absent)), absent).toBe(false);
    }
  });

  it('dfn --help and --help of every subcommand the chart and the operator run', async () => {
    const help = await run([...entrypoint(), '--help'], app);
    expect(help.stderr).toBe('');
    expect(help.code).toBe(0);
    for (const sub of ['gateway', 'operator', 'runner']) expect(help.stdout).toContain(sub);
    for (const sub of ['gateway', 'operator', 'runner']) {
      const r = await run([...entrypoint(), sub, '--help'], app);
      expect(r.stderr, sub).toBe('');
      expect(r.code, sub).toBe(0);
      expect(r.stdout).toContain(`Usage: dfn ${sub}`);
    }
  });

  it('runs a function in the sandbox (isolated-vm loads, the prelude and library bundles are there)', async () => {
    const dir = mkdtempSync(join(root, 'fn-'));
    // jsonwebtoken and moment are bundled at build time: the image has them without their npm packages.
    writeFileSync(
      join(dir, 'function.js'),
      'async function onTrack(event) { console.log("got", event.event, jsonwebtoken.decode(jsonwebtoken.sign({ a: 1 }, "k")).a, moment.utc(0).year()); }\n',
    );
    writeFileSync(join(dir, 'event.json'), JSON.stringify({ type: 'track', event: 'Built', userId: 'u1' }));
    const r = await run(
      [...entrypoint(), 'test', join(dir, 'function.js'), '--event', join(dir, 'event.json'), '--json'],
      app,
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'success', logs: ['got Built 1 1970'] });
  });
});
