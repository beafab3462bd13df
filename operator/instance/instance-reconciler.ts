// The FunctionInstance reconciler: plans the instance from the world (instance-plan.ts), applies what differs
// (config ConfigMap, runner Deployment, the namespace's runner NATS Secret, the JetStream consumer), judges
// the rollout, folds in delivery, and writes the status once. Its finalizer removes the consumer.

import type { KubernetesObject, V1Deployment } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { DestinationFunction } from '../../api/destination-function.js';
import type { HandlerName } from '../../api/events.js';
import {
  FunctionInstanceConditions as C,
  type FunctionInstance,
  type FunctionInstanceStatus,
  FunctionInstanceReasons as R,
} from '../../api/function-instance.js';
import { consumerName } from '../../api/jetstream.js';
import type { DeliverySource, InstanceDelivery } from '../delivery-seam.js';
import type { CodeChecker } from '../function/code-check.js';
import { revisionsOf } from '../function/function-reconciler.js';
import type { Revision } from '../function/revision.js';
import { hashOf } from '../hashing.js';
import { type Applier, statusCode } from '../machinery/apply.js';
import type { ObjectKey, ReconcileResult, Reconciler } from '../machinery/controller.js';
import type { ObjectCache } from '../machinery/informer.js';
import { describe } from '../machinery/informer.js';
import { ANNOTATIONS, CONSUMER_FINALIZER, RUNNER_NATS_SECRET, runnerDeploymentName } from '../names.js';
import { NatsUnavailableError } from '../nats-link.js';
import type { StatusWriter } from '../status-writer.js';
import { RESOURCES, type World } from '../world.js';
import type { ConsumerKeeper } from './consumers.js';
import { type InstanceConditions, type InstanceDeployment, planInstance } from './instance-plan.js';
import type { RunnerEnvironment } from './runner-config.js';

export interface InstanceReconcilerOptions {
  world: World;
  applier: Applier;
  status: StatusWriter;
  codeChecker: CodeChecker;
  consumers: ConsumerKeeper;
  delivery?: DeliverySource;
  env: RunnerEnvironment;
  /** Namespaces whose instances may reach private networks; '*' for all. */
  privateNetwork: ReadonlySet<string> | '*';
  log: Logger;
}

/** Whether the Deployment runs what we applied last, and whether its replicas are ready. */
export function runnerReadiness(
  observed: V1Deployment | undefined,
  appliedHash: string,
  replicas: number,
): { status: 'True' | 'False' | 'Unknown'; reason: string; message: string; readyReplicas: number } {
  const ready = observed?.status?.readyReplicas ?? 0;
  if (!observed || observed.metadata?.annotations?.[ANNOTATIONS.appliedHash] !== appliedHash) {
    return {
      status: 'Unknown',
      reason: R.RolloutInProgress,
      message: 'the runner Deployment is being updated',
      readyReplicas: ready,
    };
  }
  const s = observed.status ?? {};
  const stalled = s.conditions?.find(
    (c) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded',
  );
  if (stalled) {
    return {
      status: 'False',
      reason: R.RunnerNotReady,
      message: `the runner pods did not become ready: ${stalled.message ?? 'progress deadline exceeded'}`,
      readyReplicas: ready,
    };
  }
  const current = (s.observedGeneration ?? 0) >= (observed.metadata?.generation ?? 0);
  const rolledOut =
    current &&
    (s.updatedReplicas ?? 0) >= replicas &&
    (s.replicas ?? 0) === replicas &&
    (s.availableReplicas ?? 0) >= replicas &&
    ready >= replicas;
  if (!rolledOut) {
    return {
      status: 'Unknown',
      reason: R.RolloutInProgress,
      message: `${s.updatedReplicas ?? 0} of ${replicas} replicas updated, ${ready} ready`,
      readyReplicas: ready,
    };
  }
  return {
    status: 'True',
    reason: R.RunnersReady,
    message: `${ready} of ${replicas} replicas ready`,
    readyReplicas: ready,
  };
}

const DELIVERY_FIELDS = [
  'delivered',
  'retrying',
  'failed',
  'deadLettered',
  'filtered',
  'backlog',
  'lastError',
] as const;

/** The delivery a status holds: what the tracker is seeded with, so an operator restart continues from it. */
function deliveryOfStatus(status: FunctionInstanceStatus | undefined): InstanceDelivery {
  // The verdict too: without it, a restarted operator would drop Healthy until enough new attempts were seen.
  const healthy = status?.conditions?.find((c) => c.type === C.Healthy);
  return {
    delivered: status?.delivered ?? 0,
    retrying: status?.retrying ?? 0,
    failed: status?.failed ?? 0,
    deadLettered: status?.deadLettered ?? 0,
    filtered: status?.filtered ?? 0,
    ...(status?.backlog !== undefined ? { backlog: status.backlog } : {}),
    ...(status?.lastError ? { lastError: status.lastError } : {}),
    ...(healthy && healthy.status !== 'Unknown'
      ? { healthy: { status: healthy.status === 'True', reason: healthy.reason, message: healthy.message } }
      : {}),
  };
}

export class InstanceReconciler implements Reconciler {
  readonly kind = RESOURCES.instances.kind;
  /** Instances whose persisted delivery the tracker has been given (by uid), this leading session. */
  private readonly seeded = new Set<string>();

  constructor(private readonly options: InstanceReconcilerOptions) {}

  async reconcile(key: ObjectKey): Promise<ReconcileResult> {
    const { world } = this.options;
    const fi = world.instances.get(key.namespace, key.name);
    if (!fi) {
      this.options.status.forget(RESOURCES.instances.plural, key.namespace, key.name);
      // Gone without its finalizer running (removed by hand): its late stats must not count for a namesake.
      this.options.delivery?.forget(key);
      return {};
    }
    if (fi.metadata.deletionTimestamp) return this.finalize(key, fi);
    const finalizers = fi.metadata.finalizers ?? [];
    if (!finalizers.includes(CONSUMER_FINALIZER)) {
      // Before any consumer exists: whatever we create, the finalizer removes again.
      await this.options.applier.setFinalizers(fi, [...finalizers, CONSUMER_FINALIZER]);
    }

    const fn = world.functions.get(key.namespace, fi.spec?.functionRef?.name ?? '');
    const revisions = fn ? revisionsOf(world, fn) : [];
    const handlers = await this.handlersOfTarget(fi, fn, revisions);
    const plan = planInstance({
      instance: fi,
      fn,
      revisions,
      handlersOf: (r) => handlers.get(r.number),
      secret: (name) => world.secrets.get(key.namespace, name),
      sources: world.sources(),
      privateNetworkAllowed:
        this.options.privateNetwork === '*' || this.options.privateNetwork.has(key.namespace),
      env: this.options.env,
    });
    const { conditions } = plan;
    let readyReplicas: number | undefined;
    if (plan.deploy) {
      readyReplicas = await this.deploy(fi, plan.deploy, conditions);
    } else if (world.deployments.get(key.namespace, runnerName(fi))) {
      // Nothing runs what cannot run as specified; the consumer stays, so its events wait.
      await this.options.applier.delete({
        ...RESOURCES.deployments,
        namespace: key.namespace,
        name: runnerName(fi),
      });
    }

    // No tracker yet (NATS still connecting after a restart): the stored delivery, Healthy included, stays.
    const delivery = this.delivery(key, fi) ?? deliveryOfStatus(fi.status);
    if (delivery.healthy) {
      const h = delivery.healthy;
      if (h.status) conditions.markTrue(C.Healthy, h.reason, h.message);
      else conditions.markFalse(C.Healthy, h.reason, h.message);
    }
    const spec = fi.spec;
    conditions.whenReady(
      spec.suspend ? R.Suspended : R.Deployed,
      spec.suspend
        ? 'suspended: no runner runs; events wait in the consumer'
        : `revision ${plan.deploy?.revision.number} runs`,
    );
    const status: FunctionInstanceStatus = {
      observedGeneration: fi.metadata.generation,
      ...(plan.deploy ? { revision: plan.deploy.revision.number } : {}),
      ...(readyReplicas !== undefined ? { readyReplicas } : {}),
      ...pick(delivery),
      conditions: conditions.list(),
    };
    const outcome = await this.options.status.write(
      RESOURCES.instances,
      fi,
      status as Record<string, unknown>,
    );
    const consumer = conditions.get(C.ConsumerReady);
    if (consumer?.status === 'False') {
      // After the status says so: retried with backoff, since no watch event tells us NATS came back.
      throw new NatsUnavailableError(consumer.message);
    }
    return outcome.result === 'deferred' ? { requeueAfterMs: outcome.retryAfterMs } : {};
  }

  /** Handlers of the revision the instance would run (the sandbox check is cached per code). */
  private async handlersOfTarget(
    fi: FunctionInstance,
    fn: DestinationFunction | undefined,
    revisions: readonly Revision[],
  ): Promise<Map<number, readonly HandlerName[]>> {
    const pinned = fi.spec?.functionRef?.revision;
    const target = pinned === undefined ? revisions[0] : revisions.find((r) => r.number === pinned);
    const out = new Map<number, readonly HandlerName[]>();
    if (!target || !fn) return out;
    const verdict = await this.options.codeChecker.check(target.code, fn.spec.limits ?? {});
    if (verdict.valid) out.set(target.number, verdict.handlers);
    return out;
  }

  /** Applies what differs and judges the rollout; returns the ready replicas. */
  private async deploy(
    fi: FunctionInstance,
    d: InstanceDeployment,
    conditions: InstanceConditions,
  ): Promise<number> {
    const { world, consumers } = this.options;
    const ns = fi.metadata.namespace!;
    if (d.natsSecret) await this.applyIfChanged(d.natsSecret, world.secrets);
    try {
      await consumers.ensure(d.consumer);
      conditions.markTrue(C.ConsumerReady, R.ConsumerReady, `consumer ${consumerName(d.consumer)}`);
    } catch (err) {
      conditions.markFalse(
        C.ConsumerReady,
        R.NatsUnavailable,
        `consumer ${consumerName(d.consumer)}: ${describe(err)}`,
      );
    }
    await this.applyIfChanged(d.configMap, world.configMaps);
    const hash = await this.applyIfChanged(d.deployment, world.deployments);
    const observed = world.deployments.get(ns, d.deployment.metadata!.name!);
    const r = runnerReadiness(observed, hash, d.deployment.spec!.replicas ?? 0);
    if (r.status === 'True') conditions.markTrue(C.RunnerReady, r.reason, r.message);
    else if (r.status === 'False') conditions.markFalse(C.RunnerReady, r.reason, r.message);
    else conditions.markUnknown(C.RunnerReady, r.reason, r.message);
    return r.readyReplicas;
  }

  /**
   * Server-side applies `desired` unless the cached object carries the same applied-hash: a reconcile that
   * changes nothing makes no request.
   */
  private async applyIfChanged<T extends KubernetesObject>(
    desired: T,
    cache: ObjectCache<T>,
  ): Promise<string> {
    const hash = hashOf(desired);
    const current = cache.get(desired.metadata!.namespace!, desired.metadata!.name!);
    if (current?.metadata?.annotations?.[ANNOTATIONS.appliedHash] === hash) return hash;
    desired.metadata!.annotations = { ...desired.metadata!.annotations, [ANNOTATIONS.appliedHash]: hash };
    await this.options.applier.apply(desired);
    return hash;
  }

  private delivery(key: ObjectKey, fi: FunctionInstance): InstanceDelivery | undefined {
    const tracker = this.options.delivery;
    if (!tracker) return undefined;
    const uid = fi.metadata.uid ?? '';
    if (!this.seeded.has(uid)) {
      tracker.seed(key, deliveryOfStatus(fi.status));
      this.seeded.add(uid);
    }
    return tracker.current(key);
  }

  private async finalize(key: ObjectKey, fi: FunctionInstance): Promise<ReconcileResult> {
    const { applier, consumers, world, log } = this.options;
    const finalizers = fi.metadata.finalizers ?? [];
    if (finalizers.includes(CONSUMER_FINALIZER)) {
      // Runners first, so none pulls from a consumer that is going away; then the consumer.
      await applier.delete({ ...RESOURCES.deployments, namespace: key.namespace, name: runnerName(fi) });
      await consumers.delete(key);
      this.options.delivery?.forget(key);
      this.seeded.delete(fi.metadata.uid ?? '');
      try {
        await applier.setFinalizers(
          fi,
          finalizers.filter((f) => f !== CONSUMER_FINALIZER),
        );
      } catch (err) {
        if (statusCode(err) !== 404) throw err;
      }
      log.info({ instance: key }, 'instance deleted: its consumer is gone');
    }
    const others = world.instances
      .list(key.namespace)
      .filter((o) => o.metadata.name !== key.name && !o.metadata.deletionTimestamp);
    if (others.length === 0) {
      await applier.delete({ ...RESOURCES.secrets, namespace: key.namespace, name: RUNNER_NATS_SECRET });
    }
    return {};
  }
}

const runnerName = (fi: FunctionInstance) => runnerDeploymentName(fi.metadata.name!);

function pick(d: InstanceDelivery): Partial<FunctionInstanceStatus> {
  const out: Record<string, unknown> = {};
  for (const f of DELIVERY_FIELDS) if (d[f] !== undefined) out[f] = d[f];
  return out as Partial<FunctionInstanceStatus>;
}
