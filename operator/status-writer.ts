// The one writer of our kinds' status subresource: compares before it writes (an unchanged world writes
// nothing), writes each object at most once per interval (later changes wait and coalesce), and writes
// the whole status in one merge patch, observedGeneration included.

import { CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION } from '../api/kube-types.js';
import { canonical } from './hashing.js';
import { statusCode } from './machinery/apply.js';
import type { OperatorMetrics } from './metrics.js';

export interface StatusObject {
  metadata?: { namespace?: string; name?: string; resourceVersion?: string; uid?: string };
  status?: object;
}

export type WriteOutcome =
  | { result: 'written' }
  | { result: 'unchanged' }
  /** Not written yet: the object was written less than the interval ago. Reconcile again after this long. */
  | { result: 'deferred'; retryAfterMs: number }
  | { result: 'gone' };

export interface StatusWriterOptions {
  kc: KubeConfig;
  /** Least time between two writes of one object's status (ms). */
  minIntervalMs: number;
  metrics: OperatorMetrics;
  now?: () => number;
}

interface Written {
  status: string;
  /** The resourceVersion the object had when we wrote: a cache still showing it has not seen our write. */
  over: string | undefined;
  at: number;
}

export class StatusWriter {
  private readonly api: CustomObjectsApi;
  private readonly written = new Map<string, Written>();
  private readonly now: () => number;

  constructor(private readonly options: StatusWriterOptions) {
    this.api = options.kc.makeApiClient(CustomObjectsApi);
    this.now = options.now ?? Date.now;
  }

  async write(
    resource: { kind: string; plural: string },
    obj: StatusObject,
    desired: Record<string, unknown>,
  ): Promise<WriteOutcome> {
    const { metrics, minIntervalMs } = this.options;
    const namespace = obj.metadata!.namespace!;
    const name = obj.metadata!.name!;
    const key = `${resource.plural}/${namespace}/${name}/${obj.metadata?.uid ?? ''}`;
    const want = canonical(desired);
    const last = this.written.get(key);
    const cacheIsBehind = last !== undefined && last.over === obj.metadata?.resourceVersion;
    if (canonical(obj.status ?? {}) === want || (cacheIsBehind && last.status === want)) {
      metrics.statusWritesSkipped.inc({ kind: resource.kind, reason: 'unchanged' });
      return { result: 'unchanged' };
    }
    const sinceLast = last ? this.now() - last.at : Number.POSITIVE_INFINITY;
    if (sinceLast < minIntervalMs) {
      metrics.statusWritesSkipped.inc({ kind: resource.kind, reason: 'rate_limited' });
      return { result: 'deferred', retryAfterMs: minIntervalMs - sinceLast };
    }
    // A merge patch keeps fields it does not mention: name the ones to remove with null.
    const body: Record<string, unknown> = { ...desired };
    for (const field of Object.keys(obj.status ?? {})) {
      if (desired[field] === undefined) body[field] = null;
    }
    try {
      await this.api.patchNamespacedCustomObjectStatus(
        {
          group: API_GROUP,
          version: API_VERSION,
          namespace,
          plural: resource.plural,
          name,
          body: { status: body },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (statusCode(err) === 404) return { result: 'gone' };
      throw err;
    }
    metrics.statusWrites.inc({ kind: resource.kind });
    this.written.set(key, { status: want, over: obj.metadata?.resourceVersion, at: this.now() });
    return { result: 'written' };
  }

  /** The object is gone: drop what we remembered of it. */
  forget(plural: string, namespace: string, name: string): void {
    const prefix = `${plural}/${namespace}/${name}/`;
    for (const key of this.written.keys()) if (key.startsWith(prefix)) this.written.delete(key);
  }
}
