// docs/gateway.md stays true to the code: every error code of the catalogue and every metric the
// gateway exports is documented with its labels, and nothing documented has disappeared.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GATEWAY_ERRORS } from '../../gateway/errors.js';
import { gatewayMetrics } from '../../gateway/metrics.js';
import { processRegistry } from '../../lib/telemetry.js';
import { labelNames, metricTable } from '../helpers/metric-docs.js';

const doc = readFileSync(new URL('../../docs/gateway.md', import.meta.url), 'utf8');

describe('docs/gateway.md', () => {
  it('documents every error code with its status', () => {
    for (const [code, spec] of Object.entries(GATEWAY_ERRORS)) {
      expect(doc, code).toMatch(new RegExp(`\\| \`${code}\` +\\| ${spec.status} `));
    }
  });

  it('documents no error code that does not exist', () => {
    const documented = new Set(doc.match(/GW_[A-Z0-9_]+/g));
    for (const code of documented) expect(Object.keys(GATEWAY_ERRORS), code).toContain(code);
  });

  it('documents every metric with its labels, and no metric that does not exist', () => {
    // The gateway's own series, without the process's default metrics (documented as such).
    const metrics = gatewayMetrics().registry.getMetricsAsArray();
    expect(metrics.length).toBeGreaterThan(5);
    const table = metricTable(doc);
    for (const m of metrics) expect(table.get(m.name), m.name).toEqual(labelNames(m));
    expect([...table.keys()].sort()).toEqual(metrics.map((m) => m.name).sort());
  });

  it('says the default metrics are there, under the dfn_gateway_ prefix', () => {
    const names = gatewayMetrics(processRegistry('dfn_gateway_'))
      .registry.getMetricsAsArray()
      .map((m) => m.name);
    expect(names).toContain('dfn_gateway_process_cpu_seconds_total');
    expect(doc).toMatch(/default metrics[^.]*`dfn_gateway_`/);
  });
});
