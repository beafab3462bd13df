// Looking at processes a test started indirectly (through a control plane or the local kubelet), by pid.

import { readFileSync } from 'node:fs';

/** Whether the process exists (a zombie still does: wait for it to be reaped). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The environment the process really has (Linux: /proc/<pid>/environ). */
export function environOf(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}
