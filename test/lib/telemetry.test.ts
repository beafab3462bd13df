// lib/telemetry.ts: the log line every dfn process writes (pino) and the per-process metrics registry
// (prom-client). Formatting itself is the libraries'; these pin down the shape dfn promises.

import { describe, expect, it } from 'vitest';
import { processLogger, processRegistry, silentProcessLogger } from '../../lib/telemetry.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  return {
    lines,
    raw,
    stream: {
      write: (line: string) => {
        raw.push(line);
        lines.push(JSON.parse(line));
      },
    },
  };
}

describe('processLogger', () => {
  it('writes one JSON object per line: time, level by name, component, fields, msg', () => {
    const out = capture();
    processLogger('runner', 'info', out.stream).info({ seq: 7 }, 'consuming');
    expect(out.raw).toHaveLength(1);
    expect(out.raw[0]!.endsWith('}\n')).toBe(true);
    const line = out.lines[0]!;
    expect(Object.keys(line).sort()).toEqual(['component', 'level', 'msg', 'seq', 'time']);
    expect(line).toMatchObject({ level: 'info', component: 'runner', msg: 'consuming', seq: 7 });
    expect(new Date(line.time as string).toISOString()).toBe(line.time);
  });

  it('carries child bindings on every line of the child', () => {
    const out = capture();
    const log = processLogger('runner', 'info', out.stream).child({ namespace: 'shop', instance: 'crm' });
    log.child({ replica: 'r1' }).warn('disconnected from NATS; reconnecting');
    expect(out.lines[0]).toMatchObject({
      level: 'warn',
      component: 'runner',
      namespace: 'shop',
      instance: 'crm',
      replica: 'r1',
      msg: 'disconnected from NATS; reconnecting',
    });
  });

  it('drops lines below its level, and says so to callers that would build a costly line', () => {
    const out = capture();
    const log = processLogger('gateway', 'warn', out.stream);
    log.info('not written');
    log.debug({ big: 'x' }, 'not written either');
    log.error('written');
    expect(out.lines.map((l) => l.msg)).toEqual(['written']);
    expect(log.isLevelEnabled('debug')).toBe(false);
    expect(log.isLevelEnabled('warn')).toBe(true);
    expect(processLogger('runner', 'debug', out.stream).isLevelEnabled('debug')).toBe(true);
  });

  it('logs an Error under `error` as its message, and leaves other error values alone', () => {
    const out = capture();
    const log = processLogger('operator', 'info', out.stream);
    log.warn({ error: new Error('connection refused') }, 'pull failed');
    log.warn({ error: 'already a string' }, 'pull failed');
    expect(out.lines.map((l) => l.error)).toEqual(['connection refused', 'already a string']);
  });

  it('never writes an authorization header', () => {
    const out = capture();
    processLogger('gateway', 'info', out.stream).info(
      { headers: { authorization: 'Basic c2VjcmV0Og==', 'content-type': 'application/json' } },
      'request',
    );
    expect(out.raw[0]).not.toContain('c2VjcmV0');
    expect(out.lines[0]).toMatchObject({ headers: { 'content-type': 'application/json' } });
  });

  it('has a silent variant that writes nothing at any level', () => {
    const log = silentProcessLogger();
    expect(log.isLevelEnabled('error')).toBe(false);
    expect(() => log.child({ a: 1 }).error('nothing')).not.toThrow();
  });
});

describe('processRegistry', () => {
  it("holds the process's default metrics under the given prefix, in the Prometheus text format", async () => {
    const registry = processRegistry('dfn_test_');
    const text = await registry.metrics();
    expect(text).toMatch(/^# TYPE dfn_test_process_cpu_seconds_total counter$/m);
    expect(text).toMatch(/^dfn_test_process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^# TYPE dfn_test_nodejs_eventloop_lag_seconds gauge$/m);
    expect(text).not.toMatch(/^process_cpu/m);
    expect(registry.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('gives each process registry its own series', () => {
    const a = processRegistry('dfn_a_');
    const b = processRegistry('dfn_b_');
    expect(a.getSingleMetric('dfn_b_process_cpu_seconds_total')).toBeUndefined();
    expect(b.getSingleMetric('dfn_b_process_cpu_seconds_total')).toBeDefined();
  });
});
