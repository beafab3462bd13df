// Tethered child processes (local/process.ts): exit statuses as they happened, SIGTERM then SIGKILL after
// the grace period, and nothing of the process group left once it ends.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TetheredProcess } from '../../local/process.js';
import { alive } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'dfn-tether-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Whether the process ignores SIGTERM (bit 15 of SigIgn in /proc/<pid>/status). */
const ignoresTerm = (pid: number) => {
  const mask = /SigIgn:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return (BigInt(`0x${mask}`) & (1n << 14n)) !== 0n;
};

describe('a tethered process', () => {
  it('reports its own exit code and pid', async () => {
    const p = new TetheredProcess('sh', ['-c', 'exit 3']);
    expect(await p.pid).toBeGreaterThan(0);
    expect(await p.exited).toEqual({ code: 3, signal: null });
  });

  it('reports the signal that ended it', async () => {
    const p = new TetheredProcess('sleep', ['60']);
    process.kill(await p.pid, 'SIGKILL');
    expect(await p.exited).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('stops on SIGTERM when the command honours it', async () => {
    const p = new TetheredProcess('sleep', ['60']);
    await p.pid;
    expect(await p.stop(10_000)).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('is killed after the grace period when it ignores SIGTERM, its children with it', async () => {
    // A shell that ignores SIGTERM and has a child of its own (which inherits the ignoring).
    const p = new TetheredProcess('sh', ['-c', 'trap "" TERM; sleep 60 & echo $! > child.pid; wait'], {
      cwd: dir,
    });
    const pid = await p.pid;
    await waitFor('the trap to be set', () => ignoresTerm(pid));
    const child = await waitFor('the child', () =>
      Number(readFileSync(join(dir, 'child.pid'), 'utf8').trim()),
    );
    expect(await p.stop(300)).toEqual({ code: null, signal: 'SIGKILL' });
    // Killed with its group; once reaped (it was the tether's child) it is gone.
    await waitFor('the shell to be gone', () => !alive(pid));
    await waitFor('the child to be gone', () => !alive(child));
  });

  it('a command that cannot be found exits 127', async () => {
    const p = new TetheredProcess('/nonexistent/binary', []);
    expect(await p.exited).toEqual({ code: 127, signal: null });
  });

  it("takes the command's own children with it when it exits", async () => {
    const p = new TetheredProcess('sh', ['-c', 'sleep 60 & echo $! > orphan.pid; exit 0'], { cwd: dir });
    expect(await p.exited).toEqual({ code: 0, signal: null });
    const child = Number(readFileSync(join(dir, 'orphan.pid'), 'utf8').trim());
    await waitFor('the orphaned child to be gone', () => !alive(child));
  });
});
