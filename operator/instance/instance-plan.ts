// What an instance should be, as a pure function of what the reconciler read: either a reason it cannot run
// (a condition naming the field at fault, nothing deployed) or the objects and consumer that make it run.

import type { V1ConfigMap, V1Deployment, V1Secret } from '@kubernetes/client-node';
import {
  type DestinationFunction,
  DestinationFunctionConditions,
  DestinationFunctionSpecSchema,
} from '../../api/destination-function.js';
import { EVENT_TYPES, type EventType, HANDLER_FOR_TYPE, type HandlerName } from '../../api/events.js';
import {
  FunctionInstanceConditions as C,
  type FunctionInstance,
  FunctionInstanceSpecSchema,
  FunctionInstanceReasons as R,
} from '../../api/function-instance.js';
import type { InstanceConsumerSpec } from '../../api/jetstream.js';
import { ConditionSet, type Conditions, conditionOf } from '../conditions.js';
import type { Revision } from '../function/revision.js';
import { hashOf } from '../hashing.js';
import { formatProblems, parseSpec } from '../spec-problems.js';
import type { KnownSources } from '../world.js';
import { type RunnerEnvironment, runnerConfig, runnerConfigMap } from './runner-config.js';
import { runnerDeployment } from './runner-deployment.js';
import { runnerNatsSecret } from './runner-nats-secret.js';
import { checkSettings } from './settings-check.js';

export const instanceConditions = new ConditionSet(C.Ready, [
  C.SettingsValid,
  C.ConsumerReady,
  C.RunnerReady,
] as const);

export type InstanceConditions = Conditions<(typeof instanceConditions.dependents)[number]>;

export interface InstancePlanInput {
  instance: FunctionInstance;
  fn: DestinationFunction | undefined;
  /** The function's revisions, newest first. */
  revisions: readonly Revision[];
  /** Handlers of each revision's code, by revision number (undefined: not known, all types consumed). */
  handlersOf: (revision: Revision) => readonly HandlerName[] | undefined;
  secret: (name: string) => V1Secret | undefined;
  sources: KnownSources;
  privateNetworkAllowed: boolean;
  env: RunnerEnvironment;
}

export interface InstanceDeployment {
  revision: Revision;
  consumer: InstanceConsumerSpec;
  configMap: V1ConfigMap;
  deployment: V1Deployment;
  natsSecret: V1Secret | undefined;
}

export interface InstancePlan {
  conditions: InstanceConditions;
  /** Undefined: the instance cannot run as it is; nothing is deployed for it. */
  deploy?: InstanceDeployment;
}

const SETTINGS_FIELDS = new Set(['settings', 'secretSettings']);

/** Event types that reach some handler: all of them with onBatch (a batch takes any type). */
function handledTypes(handlers: readonly HandlerName[], batching: boolean): EventType[] {
  if (batching && handlers.includes('onBatch')) return [...EVENT_TYPES];
  return EVENT_TYPES.filter((t) => handlers.includes(HANDLER_FOR_TYPE[t]));
}

export function planInstance(input: InstancePlanInput): InstancePlan {
  const { instance, fn, revisions, env } = input;
  const conditions = instanceConditions.manage(instance.status?.conditions, instance.metadata.generation);
  const notReady = (reason: string, message: string): InstancePlan => ({
    conditions: conditions.markNotReady(reason, message),
  });

  const parsed = parseSpec(FunctionInstanceSpecSchema, instance.spec);
  if (!parsed.ok) {
    const settings = parsed.problems.filter((p) => SETTINGS_FIELDS.has(p.field.split(/[.[]/)[1]!));
    const others = parsed.problems.filter((p) => !settings.includes(p));
    if (settings.length) conditions.markFalse(C.SettingsValid, R.InvalidSettings, formatProblems(settings));
    if (others.length) conditions.markNotReady(R.InvalidSpec, formatProblems(others));
    return { conditions };
  }
  const spec = parsed.spec;
  const fnName = spec.functionRef.name;

  // A function being deleted still runs its instances: its deletion waits for them (its in-use finalizer).
  if (!fn) {
    return notReady(
      R.FunctionNotFound,
      `spec.functionRef.name: DestinationFunction "${fnName}" not found in namespace ${instance.metadata.namespace}`,
    );
  }
  const fnSpec = parseSpec(DestinationFunctionSpecSchema, fn.spec);
  const fnReady = conditionOf(fn.status?.conditions, DestinationFunctionConditions.Ready);
  const why = fnReady?.message ? `: ${fnReady.message}` : '';
  if (!fnSpec.ok)
    return notReady(R.FunctionNotReady, `DestinationFunction "${fnName}" has an invalid spec${why}`);

  const pinned = spec.functionRef.revision;
  const revision = pinned === undefined ? revisions[0] : revisions.find((r) => r.number === pinned);
  if (!revision) {
    if (pinned === undefined) {
      return notReady(R.FunctionNotReady, `DestinationFunction "${fnName}" has no valid revision yet${why}`);
    }
    const have = revisions.map((r) => r.number).sort((a, b) => a - b);
    return notReady(
      R.RevisionNotFound,
      `spec.functionRef.revision: DestinationFunction "${fnName}" has no revision ${pinned} (it has ${have.length ? have.join(', ') : 'none'})`,
    );
  }

  const sources = input.sources;
  if (sources.checked && !sources.sources?.has(spec.source)) {
    return notReady(
      R.SourceUnknown,
      sources.sources
        ? `spec.source: "${spec.source}" is not a source of the gateway's write keys (${sources.from}), so it would never receive an event; known sources: ${[...sources.sources].sort().join(', ') || 'none'}`
        : `spec.source: the gateway's sources cannot be read (${sources.from}): ${sources.problem}`,
    );
  }
  if (spec.network?.allowPrivateNetwork && !input.privateNetworkAllowed) {
    return notReady(
      R.PrivateNetworkNotAllowed,
      `spec.network.allowPrivateNetwork: private-network access is not allowed in namespace ${instance.metadata.namespace} (the operator's --allow-private-network)`,
    );
  }

  const handlers = input.handlersOf(revision);
  let eventTypes: EventType[] | undefined;
  if (handlers) {
    const handled = handledTypes(handlers, spec.batching?.enabled ?? false);
    const wanted = spec.filters?.eventTypes?.length ? spec.filters.eventTypes : [...EVENT_TYPES];
    eventTypes = wanted.filter((t) => handled.includes(t));
    if (eventTypes.length === 0) {
      return notReady(
        R.InvalidSpec,
        `spec.filters.eventTypes: revision ${revision.number} of "${fnName}" handles none of ${wanted.join(', ')} (its handlers: ${handlers.join(', ')})`,
      );
    }
  }

  const settings = checkSettings(spec, revision.settingsSchema, input.secret);
  if (!settings.valid) {
    conditions.markFalse(C.SettingsValid, settings.reason, settings.message);
    return { conditions };
  }
  conditions.markTrue(
    C.SettingsValid,
    R.SettingsValid,
    `revision ${revision.number}'s settings schema holds`,
  );

  const config = runnerConfig(instance, spec, fnSpec.spec, revision, env);
  const configMap = runnerConfigMap(instance, config, settings.plain);
  const natsSecret = runnerNatsSecret(instance.metadata.namespace!, env.natsAuth);
  const checksum = hashOf({
    config: configMap.data,
    revision: revision.hash,
    secrets: settings.secretValues,
    nats: natsSecret?.data,
  });
  return {
    conditions,
    deploy: {
      revision,
      consumer: {
        namespace: instance.metadata.namespace!,
        name: instance.metadata.name!,
        source: spec.source,
        ...(eventTypes ? { eventTypes } : {}),
        maxAckPending: config.consumer.maxAckPending,
        ackWaitMs: config.consumer.ackWaitMs,
      },
      configMap,
      deployment: runnerDeployment({ instance, spec, config, revision, env, checksum }),
      natsSecret,
    },
  };
}
