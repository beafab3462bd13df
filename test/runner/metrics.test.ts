// The runner's /metrics series (runner/metrics.ts): names, labels and values as the counters move, read
// afresh at every scrape; the handler-duration histogram filled by Stats.

import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ERROR_TYPES } from '../../api/outcome.js';
import { processRegistry } from '../../lib/telemetry.js';
import { type Gauges, runnerRegistry } from '../../runner/metrics.js';
import { Stats } from '../../runner/stats.js';

const identity = { instance: { namespace: 'shop', name: 'crm' }, replica: 'crm-7d9-x1', revision: 'rev-3' };
const INSTANCE = 'namespace="shop",function_instance="crm"';

function scraped() {
  const stats = new Stats(identity);
  const gauges: Gauges = { inFlight: 0, natsConnected: false, ready: false, sandboxRebuilds: 0 };
  const registry = runnerRegistry(stats, () => gauges);
  return { stats, gauges, registry, text: () => registry.metrics() };
}

/** The value of the one sample `series` (name and labels, exactly as rendered). */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no sample ${series} in\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe('runner metrics', () => {
  it('show the counters as they are at each scrape, labelled with the instance', async () => {
    const { stats, text } = scraped();
    expect(sample(await text(), `dfn_runner_events_received_total{${INSTANCE}}`)).toBe(0);
    Object.assign(stats.counters, {
      received: 9,
      delivered: 4,
      filtered: 1,
      retried: 2,
      deadLettered: 1,
      released: 1,
      deadLetteredFromAdvisory: 3,
      invocations: 5,
    });
    const t = await text();
    expect(sample(t, `dfn_runner_events_received_total{${INSTANCE}}`)).toBe(9);
    expect(sample(t, `dfn_runner_events_delivered_total{${INSTANCE}}`)).toBe(4);
    expect(sample(t, `dfn_runner_events_filtered_total{${INSTANCE}}`)).toBe(1);
    expect(sample(t, `dfn_runner_events_retried_total{${INSTANCE}}`)).toBe(2);
    expect(sample(t, `dfn_runner_events_dead_lettered_total{${INSTANCE}}`)).toBe(1);
    expect(sample(t, `dfn_runner_events_released_total{${INSTANCE}}`)).toBe(1);
    expect(sample(t, `dfn_runner_events_dead_lettered_from_advisory_total{${INSTANCE}}`)).toBe(3);
    expect(sample(t, `dfn_runner_invocations_total{${INSTANCE}}`)).toBe(5);
    expect(t).toContain('# TYPE dfn_runner_events_received_total counter');
    expect(t).toContain('# HELP dfn_runner_events_received_total Messages taken from the consumer');
    // A second scrape does not add the counters again.
    expect(sample(await text(), `dfn_runner_events_received_total{${INSTANCE}}`)).toBe(9);
  });

  it('count discards per error type, every discarding type from 0, none for retried types', async () => {
    const { stats, text } = scraped();
    stats.discarded('BadRequest');
    stats.discarded('BadRequest');
    stats.discarded('MessageRejected');
    const t = await text();
    const discarded = (type: string) =>
      sample(t, `dfn_runner_events_discarded_total{${INSTANCE},error_type="${type}"}`);
    expect(discarded('BadRequest')).toBe(2);
    expect(discarded('MessageRejected')).toBe(1);
    for (const [type, spec] of Object.entries(ERROR_TYPES)) {
      if (spec.outcome === 'discard') expect(discarded(type), type).toBeGreaterThanOrEqual(0);
      else expect(t, type).not.toContain(`error_type="${type}"`);
    }
    expect(discarded('UnsupportedEventType')).toBe(0);
  });

  it('record each handler call in the duration histogram and the execution-time counter', async () => {
    const { stats, text } = scraped();
    stats.invoked(0.3); // 0.0003 s: the first bucket
    stats.invoked(40); // 0.04 s
    stats.invoked(20_000); // 20 s: above the last bucket
    const t = await text();
    const h = 'dfn_runner_invocation_duration_seconds';
    expect(sample(t, `${h}_count{${INSTANCE}}`)).toBe(3);
    expect(sample(t, `${h}_sum{${INSTANCE}}`)).toBeCloseTo(20.0403, 6);
    expect(sample(t, `${h}_bucket{le="0.0005",${INSTANCE}}`)).toBe(1);
    expect(sample(t, `${h}_bucket{le="0.05",${INSTANCE}}`)).toBe(2);
    expect(sample(t, `${h}_bucket{le="10",${INSTANCE}}`)).toBe(2);
    expect(sample(t, `${h}_bucket{le="+Inf",${INSTANCE}}`)).toBe(3);
    expect(sample(t, `dfn_runner_execution_seconds_total{${INSTANCE}}`)).toBeCloseTo(20.0403, 6);
  });

  it('record each sandbox call: the events it carried and its time, from the first scrape', async () => {
    const { stats, text } = scraped();
    const sizes = 'dfn_runner_sandbox_call_events';
    const times = 'dfn_runner_sandbox_call_seconds';
    // Present at 0 before any call, so a rate over the first calls sees them all.
    expect(sample(await text(), `${sizes}_count{${INSTANCE}}`)).toBe(0);
    expect(sample(await text(), `${times}_count{${INSTANCE}}`)).toBe(0);
    stats.sandboxCall(1, 0.4); // a lone event, answered within the first bucket
    stats.sandboxCall(100, 30); // an onBatch batch of 100
    stats.sandboxCall(400, 12_000); // the largest batch there can be, past the last time bucket
    const t = await text();
    expect(sample(t, `${sizes}_count{${INSTANCE}}`)).toBe(3);
    expect(sample(t, `${sizes}_sum{${INSTANCE}}`)).toBe(501);
    expect(sample(t, `${sizes}_bucket{le="1",${INSTANCE}}`)).toBe(1);
    expect(sample(t, `${sizes}_bucket{le="64",${INSTANCE}}`)).toBe(1);
    expect(sample(t, `${sizes}_bucket{le="128",${INSTANCE}}`)).toBe(2);
    expect(sample(t, `${sizes}_bucket{le="400",${INSTANCE}}`)).toBe(3);
    expect(sample(t, `${times}_sum{${INSTANCE}}`)).toBeCloseTo(12.0304, 6);
    expect(sample(t, `${times}_bucket{le="0.0005",${INSTANCE}}`)).toBe(1);
    expect(sample(t, `${times}_bucket{le="10",${INSTANCE}}`)).toBe(2);
    expect(sample(t, `${times}_bucket{le="+Inf",${INSTANCE}}`)).toBe(3);
    // The handlers' own durations are another series: a sandbox call is not an invocation.
    expect(sample(t, `dfn_runner_invocation_duration_seconds_count{${INSTANCE}}`)).toBe(0);
  });

  it('show the gauges and the revision the replica runs', async () => {
    const { gauges, text } = scraped();
    Object.assign(gauges, { inFlight: 7, natsConnected: true, ready: true, sandboxRebuilds: 2 });
    const t = await text();
    expect(sample(t, `dfn_runner_in_flight_events{${INSTANCE}}`)).toBe(7);
    expect(sample(t, `dfn_runner_nats_connected{${INSTANCE}}`)).toBe(1);
    expect(sample(t, `dfn_runner_ready{${INSTANCE}}`)).toBe(1);
    expect(sample(t, `dfn_runner_sandbox_rebuilds_total{${INSTANCE}}`)).toBe(2);
    expect(sample(t, `dfn_runner_info{${INSTANCE},revision="rev-3",replica="crm-7d9-x1"}`)).toBe(1);
    expect(t).toContain('# TYPE dfn_runner_in_flight_events gauge');
    gauges.natsConnected = false;
    expect(sample(await text(), `dfn_runner_nats_connected{${INSTANCE}}`)).toBe(0);
  });

  it('keep two runners in one process apart', async () => {
    const a = scraped();
    const b = scraped();
    a.stats.counters.delivered = 3;
    a.stats.invoked(1);
    expect(sample(await a.text(), `dfn_runner_events_delivered_total{${INSTANCE}}`)).toBe(3);
    expect(sample(await b.text(), `dfn_runner_events_delivered_total{${INSTANCE}}`)).toBe(0);
    expect(sample(await b.text(), `dfn_runner_invocation_duration_seconds_count{${INSTANCE}}`)).toBe(0);
  });

  it("hold only the runner's series unless given the process registry", async () => {
    const names = (registry: Registry) => registry.getMetricsAsArray().map((m) => m.name);
    const own = names(runnerRegistry(new Stats(identity), () => scraped().gauges));
    expect(own.every((n) => n.startsWith('dfn_runner_') && !n.includes('process_'))).toBe(true);
    const withProcess = names(
      runnerRegistry(new Stats(identity), () => scraped().gauges, processRegistry('dfn_runner_')),
    );
    expect(withProcess).toEqual(expect.arrayContaining([...own, 'dfn_runner_process_cpu_seconds_total']));
  });
});
