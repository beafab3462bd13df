// What the reconcilers read: the watched kinds as caches (never a live API read on the hot path), the kinds'
// API coordinates, and the sources the gateway knows.

import type { V1ConfigMap, V1Deployment, V1Secret } from '@kubernetes/client-node';
import { DESTINATION_FUNCTION_KIND, type DestinationFunction } from '../api/destination-function.js';
import { FUNCTION_INSTANCE_KIND, type FunctionInstance } from '../api/function-instance.js';
import { API_GROUP_VERSION } from '../api/kube-types.js';
import type { ObjectCache, Resource } from './machinery/informer.js';

export const RESOURCES = {
  functions: {
    apiVersion: API_GROUP_VERSION,
    kind: DESTINATION_FUNCTION_KIND,
    plural: 'destinationfunctions',
  },
  instances: { apiVersion: API_GROUP_VERSION, kind: FUNCTION_INSTANCE_KIND, plural: 'functioninstances' },
  configMaps: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' },
  secrets: { apiVersion: 'v1', kind: 'Secret', plural: 'secrets' },
  deployments: { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments' },
} as const satisfies Record<string, Resource>;

/** The gateway's sources, from its write-keys Secret. */
export type KnownSources =
  /** No write-keys Secret configured: sources are not checked. */
  | { checked: false }
  | { checked: true; sources: ReadonlySet<string>; from: string }
  /** Configured, but never readable: no source can be confirmed. */
  | { checked: true; sources?: undefined; from: string; problem: string };

export interface World {
  functions: ObjectCache<DestinationFunction>;
  instances: ObjectCache<FunctionInstance>;
  configMaps: ObjectCache<V1ConfigMap>;
  secrets: ObjectCache<V1Secret>;
  deployments: ObjectCache<V1Deployment>;
  sources(): KnownSources;
}

/** The instances of a namespace that run a function. */
export function instancesOf(world: World, namespace: string, fnName: string): FunctionInstance[] {
  return world.instances.list(namespace).filter((fi) => fi.spec?.functionRef?.name === fnName);
}
