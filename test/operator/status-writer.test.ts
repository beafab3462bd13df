// The one status writer against the API server: an unchanged status writes nothing (not even while the
// cache lags behind our own write), writes of one object are spaced by the interval, a removed field is
// removed, and observedGeneration travels in the same write.

import { beforeAll, describe, expect, it } from 'vitest';
import type { FunctionInstance } from '../../api/function-instance.js';
import { operatorMetrics } from '../../operator/index.js';
import { StatusWriter } from '../../operator/status-writer.js';
import { RESOURCES } from '../../operator/world.js';
import { useNamespace } from '../helpers/kube.js';
import { apply, functionInstance, read } from '../helpers/operator.js';

const ns = useNamespace('op-status');
let fi: FunctionInstance;

beforeAll(async () => {
  await apply(ns.kc, functionInstance(ns.name, 'fi', { functionRef: { name: 'f' }, source: 'web' }));
  fi = (await read(ns.kc, 'FunctionInstance', ns.name, 'fi'))!;
});

describe('StatusWriter', () => {
  it('writes once, then nothing while the status is unchanged, even from a stale copy of the object', async () => {
    let now = 0;
    const metrics = operatorMetrics();
    const writer = new StatusWriter({ kc: ns.kc, minIntervalMs: 1000, metrics, now: () => now });
    const status = { observedGeneration: fi.metadata.generation, delivered: 5 };
    expect(await writer.write(RESOURCES.instances, fi, status)).toEqual({ result: 'written' });
    now += 10_000;
    // `fi` is the copy from before our write, as an informer's cache may still hold it.
    expect(await writer.write(RESOURCES.instances, fi, { ...status })).toEqual({ result: 'unchanged' });
    const fresh = (await read(ns.kc, 'FunctionInstance', ns.name, 'fi'))!;
    expect(fresh.status).toEqual(status);
    expect(
      await writer.write(RESOURCES.instances, fresh, {
        delivered: 5,
        observedGeneration: fi.metadata.generation,
      }),
    ).toEqual({ result: 'unchanged' });
    expect((await metrics.statusWrites.get()).values[0]!.value).toBe(1);
  });

  it('defers a second write within the interval and says when to come back', async () => {
    let now = 0;
    const writer = new StatusWriter({
      kc: ns.kc,
      minIntervalMs: 3000,
      metrics: operatorMetrics(),
      now: () => now,
    });
    let current = (await read(ns.kc, 'FunctionInstance', ns.name, 'fi'))!;
    expect(await writer.write(RESOURCES.instances, current, { delivered: 6 })).toEqual({ result: 'written' });
    current = (await read(ns.kc, 'FunctionInstance', ns.name, 'fi'))!;
    now += 1000;
    expect(await writer.write(RESOURCES.instances, current, { delivered: 7 })).toEqual({
      result: 'deferred',
      retryAfterMs: 2000,
    });
    now += 2000;
    expect(await writer.write(RESOURCES.instances, current, { delivered: 7 })).toEqual({ result: 'written' });
    expect((await read(ns.kc, 'FunctionInstance', ns.name, 'fi'))!.status).toEqual({ delivered: 7 });
  });

  it('an object gone is not an error', async () => {
    const writer = new StatusWriter({ kc: ns.kc, minIntervalMs: 0, metrics: operatorMetrics() });
    const ghost = { ...fi, metadata: { ...fi.metadata, name: 'ghost', uid: 'x', resourceVersion: '1' } };
    expect(await writer.write(RESOURCES.instances, ghost, { delivered: 1 })).toEqual({ result: 'gone' });
  });
});
