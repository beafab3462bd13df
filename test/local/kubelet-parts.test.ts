// The local kubelet's pure parts, and the contract every dfn process keeps with it (lib/pod-env.ts):
// $(VAR) expansion, the dfn image and its command, the atomic writer of mounted files, DFN_POD_ROOT.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { podHttpHost, podHttpPort, podPath } from '../../lib/pod-env.js';
import { expand } from '../../local/kubelet/env.js';
import { commandFor, isDfnImage, repositoryOf } from '../../local/kubelet/image.js';
import { inside, type Payload, writeAtomically } from '../../local/kubelet/volumes.js';
import { runDfn } from '../helpers/dfn.js';

const dir = mkdtempSync(join(tmpdir(), 'dfn-kubelet-parts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const payload = (files: Record<string, string>, mode = 0o644): Payload =>
  new Map(Object.entries(files).map(([k, v]) => [k, { data: Buffer.from(v), mode }]));

describe('$(VAR) expansion, as Kubernetes does it', () => {
  it('replaces defined variables, keeps undefined references and unescapes $$', () => {
    const vars = { A: 'x', B: 'y' };
    expect(expand('$(A)-$(B)', vars)).toBe('x-y');
    expect(expand('$(MISSING) stays', vars)).toBe('$(MISSING) stays');
    expect(expand('$$(A) is literal, $$ too', vars)).toBe('$(A) is literal, $ too');
    expect(expand('no refs', vars)).toBe('no refs');
  });
});

describe('the dfn image', () => {
  const mapping = { repositories: ['ghcr.io/acme/dfn', 'dfn'], dfn: ['/usr/bin/node', 'dfn.js'] };

  it('is recognised under any tag or digest, and nothing else is', () => {
    expect(repositoryOf('ghcr.io/acme/dfn:0.1.0')).toBe('ghcr.io/acme/dfn');
    expect(repositoryOf('localhost:5000/dfn@sha256:abc')).toBe('localhost:5000/dfn');
    expect(isDfnImage(mapping, 'ghcr.io/acme/dfn@sha256:0123')).toBe(true);
    expect(isDfnImage(mapping, 'docker.io/library/dfn:latest')).toBe(true);
    expect(isDfnImage(mapping, 'ghcr.io/acme/dfn-evil:1')).toBe(false);
    expect(isDfnImage(mapping, 'ghcr.io/other/dfn:1')).toBe(false);
    expect(isDfnImage(mapping, undefined)).toBe(false);
  });

  it('runs args with the entrypoint dfn, or a command that is dfn; nothing else', () => {
    const id = (s: string) => s;
    expect(commandFor(mapping, { name: 'c', args: ['runner', '--config', '/c'] }, id)).toEqual([
      '/usr/bin/node',
      'dfn.js',
      'runner',
      '--config',
      '/c',
    ]);
    expect(
      commandFor(mapping, { name: 'c', command: ['/usr/local/bin/dfn', 'gateway'], args: ['-p', '1'] }, id),
    ).toEqual(['/usr/bin/node', 'dfn.js', 'gateway', '-p', '1']);
    expect(() => commandFor(mapping, { name: 'c', command: ['sh', '-c', 'curl evil'] }, id)).toThrow(
      /not in the dfn image/,
    );
  });
});

describe('mounted files (the atomic writer)', () => {
  it('writes each key through ..data, with its mode', async () => {
    const target = join(dir, 'a');
    expect(
      await writeAtomically(target, payload({ 'config.yaml': 'v: 1', 'secrets/apiKey': 'k' }, 0o640)),
    ).toBe(true);
    expect(readFileSync(join(target, 'config.yaml'), 'utf8')).toBe('v: 1');
    expect(readFileSync(join(target, 'secrets/apiKey'), 'utf8')).toBe('k');
    expect(readlinkSync(join(target, 'config.yaml'))).toBe('..data/config.yaml');
    expect(statSync(join(target, 'config.yaml')).mode & 0o777).toBe(0o640);
  });

  it('changes nothing when the content is the same; swaps everything at once when it is not', async () => {
    const target = join(dir, 'b');
    await writeAtomically(target, payload({ x: '1', y: '1' }));
    expect(await writeAtomically(target, payload({ x: '1', y: '1' }))).toBe(false);
    expect(await writeAtomically(target, payload({ x: '2' }))).toBe(true);
    expect(readFileSync(join(target, 'x'), 'utf8')).toBe('2');
    // A removed key disappears; exactly one version directory is left.
    expect(readdirSync(target).filter((f) => !f.startsWith('..'))).toEqual(['x']);
    expect(readdirSync(target).filter((f) => /^\.\.\d/.test(f))).toHaveLength(1);
  });

  it('never shows a half-written version: whatever ..data points to is complete', async () => {
    const target = join(dir, 'c');
    await writeAtomically(target, payload({ a: '0', b: '0' }));
    let mixed = 0;
    let reads = 0;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        try {
          // One resolution of ..data, then both files from that version (as a careful reader does).
          const version = join(target, readlinkSync(join(target, '..data')));
          const a = readFileSync(join(version, 'a'), 'utf8');
          const b = readFileSync(join(version, 'b'), 'utf8');
          reads++;
          if (a !== b) mixed++;
        } catch {
          // The version was retired meanwhile: the next read resolves the new one.
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 1; i <= 200; i++) await writeAtomically(target, payload({ a: String(i), b: String(i) }));
    writing = false;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect(mixed).toBe(0);
  });

  it('leaves alone what it did not write (a nested mount)', async () => {
    const target = join(dir, 'd');
    await writeAtomically(target, payload({ x: '1' }));
    mkdirSync(join(target, 'nested'));
    await writeAtomically(target, payload({ y: '1' }));
    expect(
      readdirSync(target)
        .filter((f) => !f.startsWith('..'))
        .sort(),
    ).toEqual(['nested', 'y']);
  });

  it('refuses paths that climb out of the Pod root', () => {
    expect(inside('/pods/1/root', '/etc/dfn')).toBe('/pods/1/root/etc/dfn');
    expect(() => inside('/pods/1/root', '/../../../etc/passwd')).toThrow(/leaves the Pod's root/);
    expect(() => inside('/pods/1/root', '../root2/x')).toThrow(/leaves the Pod's root/);
  });
});

describe('DFN_POD_ROOT, DFN_HTTP_PORT and DFN_HTTP_HOST (lib/pod-env.ts)', () => {
  it('puts absolute paths under the Pod root, and leaves them alone without one', () => {
    expect(podPath('/etc/dfn/config', { DFN_POD_ROOT: '/pods/1/root' })).toBe('/pods/1/root/etc/dfn/config');
    expect(podPath('/pods/1/root/etc/x', { DFN_POD_ROOT: '/pods/1/root' })).toBe('/pods/1/root/etc/x');
    expect(podPath('relative/x', { DFN_POD_ROOT: '/pods/1/root' })).toBe('relative/x');
    expect(podPath('/etc/dfn/config', {})).toBe('/etc/dfn/config');
  });

  it('reads the port strictly', () => {
    expect(podHttpPort({ DFN_HTTP_PORT: '41234' })).toBe(41234);
    expect(podHttpPort({})).toBeUndefined();
    expect(() => podHttpPort({ DFN_HTTP_PORT: '80x' })).toThrow(/DFN_HTTP_PORT must be a port/);
    expect(() => podHttpPort({ DFN_HTTP_PORT: '70000' })).toThrow(/DFN_HTTP_PORT must be a port/);
  });

  it('reads the host as an IP address only', () => {
    expect(podHttpHost({ DFN_HTTP_HOST: '127.0.0.1' })).toBe('127.0.0.1');
    expect(podHttpHost({ DFN_HTTP_HOST: '::1' })).toBe('::1');
    expect(podHttpHost({})).toBeUndefined();
    expect(() => podHttpHost({ DFN_HTTP_HOST: 'localhost' })).toThrow(/DFN_HTTP_HOST must be an IP address/);
  });

  it('dfn runner and dfn gateway refuse a bad DFN_HTTP_HOST (exit 2), naming it', async () => {
    const env = { DFN_HTTP_HOST: 'every-interface' };
    const runner = await runDfn(['runner', '--config', dir, '--check'], { env });
    expect(runner.code).toBe(2);
    expect(runner.stderr).toContain('DFN_HTTP_HOST');
    const gateway = await runDfn(['gateway', '--write-keys', join(dir, 'none.yaml')], { env });
    expect(gateway.code).toBe(2);
    expect(gateway.stderr).toContain('DFN_HTTP_HOST must be an IP address');
  });

  it('dfn runner and dfn gateway refuse a bad DFN_HTTP_PORT (exit 2), naming it', async () => {
    const runner = await runDfn(['runner', '--config', dir, '--check'], { env: { DFN_HTTP_PORT: 'eighty' } });
    expect(runner.code).toBe(2);
    expect(runner.stderr).toContain('DFN_HTTP_PORT');
    const gateway = await runDfn(['gateway', '--write-keys', join(dir, 'none.yaml')], {
      env: { DFN_HTTP_PORT: 'eighty' },
    });
    expect(gateway.code).toBe(2);
    expect(gateway.stderr).toContain('DFN_HTTP_PORT must be a port number');
  });
});
