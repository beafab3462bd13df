// The DestinationFunction reconciler: checks the code in the sandbox, freezes each new code + settings schema
// as the next revision ConfigMap, prunes revisions nobody runs, sums its instances' delivery, and keeps the
// function while instances use it.

import type { V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  DestinationFunctionConditions as C,
  type DestinationFunction,
  DestinationFunctionSpecSchema,
  type DestinationFunctionStatus,
  DestinationFunctionReasons as R,
} from '../../api/destination-function.js';
import { ConditionSet } from '../conditions.js';
import { canonical } from '../hashing.js';
import type { Applier } from '../machinery/apply.js';
import { statusCode } from '../machinery/apply.js';
import type { ObjectKey, ReconcileResult, Reconciler } from '../machinery/controller.js';
import { IN_USE_FINALIZER, LABELS, labelValue } from '../names.js';
import { formatProblems, parseSpec } from '../spec-problems.js';
import type { StatusWriter } from '../status-writer.js';
import { instancesOf, RESOURCES, type World } from '../world.js';
import type { CodeChecker, CodeVerdict } from './code-check.js';
import {
  contentHash,
  type Revision,
  type RevisionContent,
  readRevision,
  revisionConfigMap,
} from './revision.js';

export const functionConditions = new ConditionSet(C.Ready, [C.CodeValid] as const);

export interface FunctionReconcilerOptions {
  world: World;
  applier: Applier;
  status: StatusWriter;
  codeChecker: CodeChecker;
  log: Logger;
  /** Revisions kept besides those instances run or pin. */
  revisionHistory: number;
}

/** The function's revisions, newest first. */
export function revisionsOf(world: World, fn: DestinationFunction): Revision[] {
  return world.configMaps
    .list(fn.metadata.namespace!)
    .filter((cm) => cm.metadata?.labels?.[LABELS.function] === labelValue(fn.metadata.name!))
    .map((cm) => readRevision(cm, fn))
    .filter((r): r is Revision => r !== undefined)
    .sort((a, b) => b.number - a.number);
}

/** The status fields that only sum up the function's instances (written by its reconciler from theirs). */
const INSTANCE_SUMS = ['instances', 'delivered', 'retrying', 'failed'] as const;

/**
 * Whether a change of a function can change what its instances are: its spec, or its status beyond the sums
 * of its instances. Those sums move with every instance's status write; reconciling each of the function's
 * instances for them would turn every instance write into one reconcile of all its siblings.
 */
export function changeConcernsInstances(
  fn: DestinationFunction,
  previous: DestinationFunction | undefined,
): boolean {
  if (!previous) return true;
  const whatInstancesRead = (f: DestinationFunction) => {
    const status: Record<string, unknown> = { ...f.status };
    for (const field of INSTANCE_SUMS) delete status[field];
    return canonical({
      generation: f.metadata.generation,
      deleting: f.metadata.deletionTimestamp !== undefined,
      spec: f.spec,
      status,
    });
  };
  return whatInstancesRead(fn) !== whatInstancesRead(previous);
}

type CodeSource = { code: string } | { missing: string };

function codeOf(world: World, fn: DestinationFunction): CodeSource {
  const { code, codeFrom } = fn.spec;
  if (code !== undefined) return { code };
  const ref = codeFrom!.configMapKeyRef;
  const cm = world.configMaps.get(fn.metadata.namespace!, ref.name);
  if (!cm) return { missing: `spec.codeFrom: ConfigMap "${ref.name}" not found` };
  const text = cm.data?.[ref.key];
  if (text === undefined)
    return { missing: `spec.codeFrom: ConfigMap "${ref.name}" has no key "${ref.key}"` };
  return { code: text };
}

export class FunctionReconciler implements Reconciler {
  readonly kind = RESOURCES.functions.kind;

  constructor(private readonly options: FunctionReconcilerOptions) {}

  async reconcile(key: ObjectKey): Promise<ReconcileResult> {
    const { world, applier, log } = this.options;
    const fn = world.functions.get(key.namespace, key.name);
    if (!fn) {
      this.options.status.forget(RESOURCES.functions.plural, key.namespace, key.name);
      return {};
    }
    const instances = instancesOf(world, key.namespace, key.name);
    const finalizers = fn.metadata.finalizers ?? [];

    if (fn.metadata.deletionTimestamp) {
      if (instances.length > 0) {
        const conditions = functionConditions.manage(fn.status?.conditions, fn.metadata.generation);
        const names = instances.map((i) => i.metadata.name).sort();
        conditions.markNotReady(
          R.InUse,
          `deletion waits until no FunctionInstance uses it (${names.length}: ${names.slice(0, 10).join(', ')}${names.length > 10 ? ', …' : ''})`,
        );
        return this.writeStatus(fn, {
          ...(fn.status ?? {}),
          observedGeneration: fn.metadata.generation,
          instances: instances.length,
          conditions: conditions.list(),
        });
      }
      if (finalizers.includes(IN_USE_FINALIZER)) {
        await applier.setFinalizers(
          fn,
          finalizers.filter((f) => f !== IN_USE_FINALIZER),
        );
        log.info({ function: key }, 'no instance uses the function any more: deletion goes on');
      }
      return {};
    }
    if (!finalizers.includes(IN_USE_FINALIZER)) {
      await applier.setFinalizers(fn, [...finalizers, IN_USE_FINALIZER]);
    }

    const conditions = functionConditions.manage(fn.status?.conditions, fn.metadata.generation);
    let revisions = revisionsOf(world, fn);
    const parsed = parseSpec(DestinationFunctionSpecSchema, fn.spec);
    let handlers: CodeVerdict | undefined;

    if (!parsed.ok) {
      conditions.markNotReady(R.InvalidSpec, formatProblems(parsed.problems));
    } else {
      const source = codeOf(world, fn);
      const limits = parsed.spec.limits ?? {};
      if ('missing' in source) {
        conditions.markFalse(C.CodeValid, R.CodeNotFound, source.missing);
      } else {
        const verdict = await this.options.codeChecker.check(source.code, limits);
        if (!verdict.valid) {
          conditions.markFalse(C.CodeValid, verdict.reason, verdict.message);
        } else {
          conditions.markTrue(C.CodeValid, R.CodeLoaded, `handlers: ${verdict.handlers.join(', ')}`);
          const content: RevisionContent = {
            code: source.code,
            settingsSchema: (fn.spec.settings ?? []) as RevisionContent['settingsSchema'],
          };
          const latest = await this.ensureRevision(fn, revisions, content);
          if (latest && !revisions.some((r) => r.number === latest.number))
            revisions = [latest, ...revisions];
          conditions.whenReady(R.RevisionReady, `revision ${latest.number} holds the current code`);
        }
      }
    }
    if (!conditions.isTrue(C.Ready) && revisions[0]) {
      // Runners keep what they had: a broken edit never becomes a revision.
      const c = conditions.get(C.Ready)!;
      conditions.markNotReady(
        c.reason,
        `${c.message} (instances keep running revision ${revisions[0].number})`,
      );
    }
    if (revisions[0]) {
      const latest = await this.options.codeChecker.check(
        revisions[0].code,
        parsed.ok ? parsed.spec.limits : {},
      );
      handlers = latest;
    }
    await this.prune(fn, revisions);

    const status: DestinationFunctionStatus = {
      observedGeneration: fn.metadata.generation,
      ...(revisions[0] ? { latestRevision: revisions[0].number } : {}),
      ...(handlers?.valid ? { handlers: handlers.handlers } : {}),
      instances: instances.length,
      delivered: sum(instances, (s) => s.delivered),
      retrying: sum(instances, (s) => s.retrying),
      // An instance's failed already counts discarded and dead-lettered events (api/delivery-status.ts).
      failed: sum(instances, (s) => s.failed),
      conditions: conditions.list(),
    };
    return this.writeStatus(fn, status);
  }

  /** The revision holding `content`: the latest if it matches, else a new one numbered after every other. */
  private async ensureRevision(
    fn: DestinationFunction,
    revisions: Revision[],
    content: RevisionContent,
  ): Promise<Revision> {
    const hash = contentHash(content);
    const latest = revisions[0];
    if (latest?.hash === hash) return latest;
    // Numbers never repeat: not even after someone deleted the revision ConfigMaps.
    const number = Math.max(latest?.number ?? 0, fn.status?.latestRevision ?? 0) + 1;
    const cm = revisionConfigMap(fn, number, content);
    try {
      await this.options.applier.create<V1ConfigMap>(cm);
      this.options.log.info(
        { function: `${fn.metadata.namespace}/${fn.metadata.name}`, revision: number },
        'new revision',
      );
    } catch (err) {
      // Already there: made by our previous reconcile, which the cache has not shown yet. Requeue to see it.
      if (statusCode(err) === 409) throw new Error(`revision ConfigMap ${cm.metadata!.name} exists already`);
      throw err;
    }
    return { ...content, number, hash, configMapName: cm.metadata!.name! };
  }

  /** Deletes revisions beyond the newest few that no instance runs or pins. */
  private async prune(fn: DestinationFunction, revisions: Revision[]): Promise<void> {
    const { world, applier, revisionHistory } = this.options;
    const inUse = new Set<number>();
    for (const fi of instancesOf(world, fn.metadata.namespace!, fn.metadata.name!)) {
      if (fi.spec.functionRef.revision) inUse.add(fi.spec.functionRef.revision);
      if (fi.status?.revision) inUse.add(fi.status.revision);
    }
    for (const r of revisions.slice(revisionHistory)) {
      if (inUse.has(r.number)) continue;
      await applier.delete({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace: fn.metadata.namespace!,
        name: r.configMapName,
      });
    }
  }

  private async writeStatus(
    fn: DestinationFunction,
    status: DestinationFunctionStatus,
  ): Promise<ReconcileResult> {
    const outcome = await this.options.status.write(
      RESOURCES.functions,
      fn,
      status as Record<string, unknown>,
    );
    return outcome.result === 'deferred' ? { requeueAfterMs: outcome.retryAfterMs } : {};
  }
}

function sum(
  instances: { status?: Record<string, unknown> }[],
  field: (s: { delivered?: number; retrying?: number; failed?: number }) => number | undefined,
): number {
  return instances.reduce((total, fi) => total + (field(fi.status ?? {}) ?? 0), 0);
}
