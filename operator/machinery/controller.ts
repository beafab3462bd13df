// One controller per kind: a work queue of `namespace/name` keys, a few workers calling the kind's reconciler,
// backoff on errors and the reconciler's own requeue-after. Knows nothing of any kind's domain.

import type { Logger } from 'pino';
import type { OperatorMetrics } from '../metrics.js';
import { describe } from './informer.js';
import { WorkQueue, type WorkQueueOptions } from './work-queue.js';

export interface ObjectKey {
  namespace: string;
  name: string;
}

export const formatKey = (k: ObjectKey) => `${k.namespace}/${k.name}`;

export function parseKey(key: string): ObjectKey {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export interface ReconcileResult {
  /** Reconcile this key again after this long (ms), e.g. to write a rate-limited status. */
  requeueAfterMs?: number;
}

/** Level-triggered: reads the world for the key, makes it as it should be, says when to look again. */
export interface Reconciler {
  readonly kind: string;
  reconcile(key: ObjectKey): Promise<ReconcileResult>;
}

export interface ControllerOptions extends WorkQueueOptions {
  reconciler: Reconciler;
  workers?: number;
  log: Logger;
  metrics: OperatorMetrics;
}

export class Controller {
  readonly queue: WorkQueue;
  private readonly workers: Promise<void>[] = [];
  private readonly reconciler: Reconciler;
  private readonly log: Logger;
  private readonly metrics: OperatorMetrics;

  constructor(private readonly options: ControllerOptions) {
    this.queue = new WorkQueue(options);
    this.reconciler = options.reconciler;
    this.log = options.log.child({ controller: options.reconciler.kind });
    this.metrics = options.metrics;
    this.metrics.queueDepth.set({ kind: this.kind }, 0);
  }

  get kind(): string {
    return this.reconciler.kind;
  }

  enqueue(key: ObjectKey): void {
    this.queue.add(formatKey(key));
    this.metrics.queueDepth.set({ kind: this.kind }, this.queue.length);
  }

  enqueueAfter(key: ObjectKey, delayMs: number): void {
    this.queue.addAfter(formatKey(key), delayMs);
  }

  start(): void {
    for (let i = 0; i < (this.options.workers ?? 4); i++) this.workers.push(this.work());
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      this.metrics.queueDepth.set({ kind: this.kind }, this.queue.length);
      if (key === undefined) return;
      const end = this.metrics.reconcileDuration.startTimer({ kind: this.kind });
      try {
        const result = await this.reconciler.reconcile(parseKey(key));
        this.queue.forget(key);
        this.metrics.reconciles.inc({
          kind: this.kind,
          result: result.requeueAfterMs ? 'requeue' : 'success',
        });
        if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        // Errors never crash the operator nor loop hot: the key comes back with exponential backoff.
        const retryInMs = this.queue.addRateLimited(key);
        this.metrics.reconciles.inc({ kind: this.kind, result: 'error' });
        this.metrics.reconcileErrors.inc({ kind: this.kind });
        this.log.warn(
          { key, error: describe(err), failures: this.queue.failuresOf(key), retryInMs },
          'reconcile failed',
        );
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  /** Stops taking keys; resolves when the reconciles under way have ended. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.workers.splice(0));
  }
}
