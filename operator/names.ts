// Names and labels of the objects the operator makes, derived from the names of ours: bounded in length
// (a hash replaces the tail of a long name, so two long names never collide) and valid as label values.

import { sha256 } from './hashing.js';

export const LABELS = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
  partOf: 'app.kubernetes.io/part-of',
  function: 'dfn.dev/function',
  functionInstance: 'dfn.dev/function-instance',
  revision: 'dfn.dev/revision',
} as const;

export const MANAGED_BY = 'dfn-operator';

export const ANNOTATIONS = {
  /** sha256 of a revision's code and settings schema. */
  contentHash: 'dfn.dev/content-hash',
  /** sha256 of everything a runner reads at start: pods roll when it changes. */
  configChecksum: 'dfn.dev/config-checksum',
  /** sha256 of the desired object as the operator applied it: unchanged means nothing to apply. */
  appliedHash: 'dfn.dev/applied-hash',
} as const;

/** Deletes an instance's JetStream consumers before the instance goes. */
export const CONSUMER_FINALIZER = 'dfn.dev/consumer';
/** Keeps a function while instances use it (as Kubernetes protects a PVC in use). */
export const IN_USE_FINALIZER = 'dfn.dev/in-use';

/** `base` + `suffix`, at most `max` characters: a long base keeps its head and gains a hash of the whole. */
export function boundedName(base: string, suffix: string, max = 63): string {
  if (base.length + suffix.length <= max) return `${base}${suffix}`;
  const hash = sha256(base).slice(0, 10);
  const head = base.slice(0, max - suffix.length - hash.length - 1).replace(/[-.]+$/, '');
  return `${head}-${hash}${suffix}`;
}

/** A label value (≤ 63 characters, alphanumeric at both ends) standing for an object name. */
export function labelValue(name: string): string {
  return name.length <= 63 ? name : boundedName(name, '', 63);
}

export const revisionConfigMapName = (fn: string, revision: number) => boundedName(fn, `-r${revision}`, 253);
export const runnerDeploymentName = (instance: string) => boundedName(instance, '-runner');
export const runnerConfigMapName = (instance: string) => boundedName(instance, '-runner-config', 253);
/** The Secret with the runners' NATS credentials, one per namespace that has instances. */
export const RUNNER_NATS_SECRET = 'dfn-runner-nats';
