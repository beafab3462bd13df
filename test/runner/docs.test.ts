// docs/runner.md stays true to /metrics: its table lists every series the runner registers, with its
// labels, and nothing the runner does not export.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { processRegistry } from '../../lib/telemetry.js';
import { runnerRegistry } from '../../runner/metrics.js';
import { Stats } from '../../runner/stats.js';
import { repoRoot } from '../helpers/dfn.js';
import { labelNames, metricTable } from '../helpers/metric-docs.js';

const doc = readFileSync(`${repoRoot}docs/runner.md`, 'utf8');
const stats = () => new Stats({ instance: { namespace: 'n', name: 'i' }, replica: 'r', revision: '1' });
const gauges = () => ({ inFlight: 0, natsConnected: true, ready: true, sandboxRebuilds: 0 });

describe('docs/runner.md', () => {
  it('lists every runner metric with its labels, and no metric that does not exist', () => {
    // The runner's own series, without the process's default metrics (documented as such).
    const metrics = runnerRegistry(stats(), gauges).getMetricsAsArray();
    expect(metrics.length).toBeGreaterThan(10);
    const table = metricTable(doc);
    for (const m of metrics) expect(table.get(m.name), m.name).toEqual(labelNames(m));
    expect([...table.keys()].sort()).toEqual(metrics.map((m) => m.name).sort());
  });

  it('says the default metrics are there, under the dfn_runner_ prefix', () => {
    const names = runnerRegistry(stats(), gauges, processRegistry('dfn_runner_'))
      .getMetricsAsArray()
      .map((m) => m.name);
    expect(names).toContain('dfn_runner_process_cpu_seconds_total');
    expect(doc).toMatch(/default metrics[^.]*`dfn_runner_`/);
  });
});
