// lib/metrics.ts, the hand-written Prometheus registry behind /metrics: exposition format, label
// escaping, cumulative histogram buckets, and the mistakes it refuses.

import { describe, expect, it } from 'vitest';
import { Registry } from '../../lib/metrics.js';

describe('Registry', () => {
  it('renders counters with HELP and TYPE lines and one sample per label set', () => {
    const r = new Registry();
    const c = r.counter('jobs_total', 'Jobs done', ['kind']);
    c.inc({ kind: 'a' });
    c.inc({ kind: 'a' }, 2);
    c.inc({ kind: 'b' });
    expect(r.render()).toBe(
      '# HELP jobs_total Jobs done\n# TYPE jobs_total counter\njobs_total{kind="a"} 3\njobs_total{kind="b"} 1\n',
    );
    expect(c.get({ kind: 'a' })).toBe(3);
  });

  it('renders unlabelled gauges', () => {
    const r = new Registry();
    const g = r.gauge('temperature', 'Degrees');
    g.set(21.5);
    g.set(19);
    expect(r.render()).toBe('# HELP temperature Degrees\n# TYPE temperature gauge\ntemperature 19\n');
  });

  it('escapes backslashes, quotes and newlines in label values', () => {
    const r = new Registry();
    r.counter('odd_total', 'Odd labels', ['v']).inc({ v: 'a"b\\c\nd' });
    expect(r.render()).toContain('odd_total{v="a\\"b\\\\c\\nd"} 1\n');
  });

  it('renders histograms with cumulative buckets, +Inf, sum and count', () => {
    const r = new Registry();
    const h = r.histogram('latency_seconds', 'Latency', ['op'], [0.1, 1]);
    h.observe({ op: 'x' }, 0.05);
    h.observe({ op: 'x' }, 0.5);
    h.observe({ op: 'x' }, 3);
    expect(r.render()).toBe(
      [
        '# HELP latency_seconds Latency',
        '# TYPE latency_seconds histogram',
        'latency_seconds_bucket{op="x",le="0.1"} 1',
        'latency_seconds_bucket{op="x",le="1"} 2',
        'latency_seconds_bucket{op="x",le="+Inf"} 3',
        'latency_seconds_sum{op="x"} 3.55',
        'latency_seconds_count{op="x"} 3',
        '',
      ].join('\n'),
    );
    expect(h.count({ op: 'x' })).toBe(3);
  });

  it('refuses a metric registered twice, bad names, negative counter steps and unsorted buckets', () => {
    const r = new Registry();
    r.counter('a_total', 'A');
    expect(() => r.counter('a_total', 'again')).toThrow(/registered twice/);
    expect(() => r.counter('bad-name', 'x')).toThrow(/invalid metric name/);
    expect(() => r.counter('ok_total', 'x', ['le'])).toThrow(/invalid label name/);
    expect(() => r.counter('neg_total', 'x').inc(-1)).toThrow(/only go up/);
    expect(() => r.histogram('h', 'x', [], [1, 0.5])).toThrow(/strictly increasing/);
  });

  it('refuses a sample without its labels', () => {
    const r = new Registry();
    const c = r.counter('lab_total', 'x', ['a', 'b']);
    expect(() => c.inc({ a: '1' } as unknown as { a: string; b: string })).toThrow(/label "b" missing/);
  });
});
