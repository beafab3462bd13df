// How quiet the machine was while a benchmark ran. On a virtual machine the figure that says so is steal:
// time the hypervisor gave other guests while this one had work to run. Every benchmark's figures are
// only as good as this reading; a run with steal well above zero measures the neighbours too.

import { readFileSync } from 'node:fs';

export type MachineTicks = { total: number; idle: number; steal: number };

/**
 * The machine's CPU time so far, from /proc/stat, in ticks: `steal` is what the hypervisor gave other
 * guests while this one wanted to run, the measure of how quiet a virtual machine was.
 */
export function machineTicks(): MachineTicks {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already counted in user)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle: idle + iowait, steal };
}

/** Steal and busy time as percentages of the machine's CPU time between two readings. */
export function machineShare(
  before: MachineTicks,
  after: MachineTicks,
): { stealPct: number; busyPct: number } {
  const total = Math.max(1, after.total - before.total);
  const pct = (n: number) => Math.round((1000 * n) / total) / 10;
  return {
    stealPct: pct(after.steal - before.steal),
    busyPct: pct(total - (after.idle - before.idle) - (after.steal - before.steal)),
  };
}

/** The reading as a line of a benchmark's output. */
export function machineLine(share: { stealPct: number; busyPct: number }): string {
  return `machine meanwhile: ${share.busyPct} % of its CPU time busy, ${share.stealPct} % stolen by the hypervisor for other guests (0 when quiet)`;
}
