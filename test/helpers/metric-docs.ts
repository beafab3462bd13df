// Reads the metric tables of the docs (| `name` | `label`, `label` | meaning |), so docs tests can hold
// them to the registries the processes serve.

import type { MetricObject } from 'prom-client';

/** Metric name → its label names (sorted), from every table row that opens with a `dfn_…` name. */
export function metricTable(markdown: string): Map<string, string[]> {
  const table = new Map<string, string[]>();
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const name = /^`(dfn_[a-z0-9_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!name) continue;
    if (table.has(name)) throw new Error(`${name} is in the docs' tables twice`);
    table.set(name, [...(cells[2] ?? '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!).sort());
  }
  return table;
}

/** A prom-client metric's label names, sorted (prom-client keeps them on the instance, untyped). */
export function labelNames(metric: MetricObject): string[] {
  return [...((metric as unknown as { labelNames: readonly string[] }).labelNames ?? [])].sort();
}
