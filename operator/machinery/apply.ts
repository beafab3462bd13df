// Writes to the API server: server-side apply under one field manager, deletes that accept "already gone",
// and merge patches of metadata (finalizers) guarded by the resourceVersion they were computed from.

import {
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
} from '@kubernetes/client-node';
import type { OperatorMetrics } from '../metrics.js';

export const FIELD_MANAGER = 'dfn-operator';

const NOT_FOUND = 404;

export function statusCode(err: unknown): number | undefined {
  return (err as { code?: number })?.code;
}

export class Applier {
  private readonly api: KubernetesObjectApi;

  constructor(
    kc: KubeConfig,
    private readonly metrics: OperatorMetrics,
  ) {
    this.api = KubernetesObjectApi.makeApiClient(kc);
  }

  /** Server-side apply: the object becomes what we say for the fields we own; others' fields stay. */
  async apply<T extends KubernetesObject>(obj: T): Promise<T> {
    this.metrics.applies.inc({ resource: obj.kind ?? 'unknown', action: 'apply' });
    return this.api.patch<T>(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  }

  async create<T extends KubernetesObject>(obj: T): Promise<T> {
    this.metrics.applies.inc({ resource: obj.kind ?? 'unknown', action: 'create' });
    return this.api.create<T>(obj, undefined, undefined, FIELD_MANAGER);
  }

  /** Deletes; an object already gone is fine. Dependents go by the garbage collector (background). */
  async delete(ref: { apiVersion: string; kind: string; namespace: string; name: string }): Promise<void> {
    this.metrics.applies.inc({ resource: ref.kind, action: 'delete' });
    try {
      await this.api.delete({
        apiVersion: ref.apiVersion,
        kind: ref.kind,
        metadata: { namespace: ref.namespace, name: ref.name },
      });
    } catch (err) {
      if (statusCode(err) !== NOT_FOUND) throw err;
    }
  }

  /**
   * Sets metadata.finalizers. The patch carries the resourceVersion the list was computed from, so a
   * concurrent change (another finalizer added) fails with 409 and is recomputed, never overwritten.
   */
  async setFinalizers(obj: KubernetesObject, finalizers: string[]): Promise<void> {
    await this.api.patch(
      {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        metadata: {
          namespace: obj.metadata!.namespace,
          name: obj.metadata!.name,
          resourceVersion: obj.metadata!.resourceVersion,
          finalizers,
        },
      },
      undefined,
      undefined,
      FIELD_MANAGER,
      undefined,
      PatchStrategy.MergePatch,
    );
  }
}
