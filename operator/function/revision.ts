// A function revision: its code and settings schema, frozen in an immutable ConfigMap owned by the function.
// The builder and the reader are pure; the content hash says whether the spec still matches a revision.

import type { V1ConfigMap, V1OwnerReference } from '@kubernetes/client-node';
import type { DestinationFunction } from '../../api/destination-function.js';
import type { SettingDefinition } from '../../api/settings.js';
import { hashOf } from '../hashing.js';
import { ANNOTATIONS, LABELS, labelValue, MANAGED_BY, revisionConfigMapName } from '../names.js';

/** Keys of a revision ConfigMap. function.js is projected into the runner's config directory as is. */
export const REVISION_KEYS = { code: 'function.js', settingsSchema: 'settings-schema.json' } as const;

export interface RevisionContent {
  code: string;
  settingsSchema: SettingDefinition[];
}

export interface Revision extends RevisionContent {
  number: number;
  hash: string;
  configMapName: string;
}

export const contentHash = (content: RevisionContent) =>
  hashOf({ code: content.code, settingsSchema: content.settingsSchema });

export function ownerReference(obj: {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; uid?: string };
}): V1OwnerReference {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: obj.metadata.name!,
    uid: obj.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Labels selecting a function's revision ConfigMaps. */
export const revisionLabels = (fnName: string) => ({
  [LABELS.managedBy]: MANAGED_BY,
  [LABELS.component]: 'function-revision',
  [LABELS.function]: labelValue(fnName),
});

export function revisionConfigMap(
  fn: DestinationFunction,
  number: number,
  content: RevisionContent,
): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: revisionConfigMapName(fn.metadata.name!, number),
      namespace: fn.metadata.namespace!,
      labels: { ...revisionLabels(fn.metadata.name!), [LABELS.revision]: String(number) },
      annotations: { [ANNOTATIONS.contentHash]: contentHash(content) },
      ownerReferences: [ownerReference(fn)],
    },
    // A revision never changes: instances pinned to it run exactly what it was.
    immutable: true,
    data: {
      [REVISION_KEYS.code]: content.code,
      [REVISION_KEYS.settingsSchema]: JSON.stringify(content.settingsSchema),
    },
  };
}

/** The revision a ConfigMap holds, if it is one of `fn`'s (owned by it, well-formed). */
export function readRevision(cm: V1ConfigMap, fn: DestinationFunction): Revision | undefined {
  const owned = cm.metadata?.ownerReferences?.some((o) => o.uid === fn.metadata.uid);
  const number = Number(cm.metadata?.labels?.[LABELS.revision]);
  const code = cm.data?.[REVISION_KEYS.code];
  if (!owned || !Number.isSafeInteger(number) || number < 1 || code === undefined) return undefined;
  let settingsSchema: SettingDefinition[];
  try {
    settingsSchema = JSON.parse(cm.data?.[REVISION_KEYS.settingsSchema] ?? '[]');
  } catch {
    return undefined;
  }
  return {
    number,
    code,
    settingsSchema,
    hash: cm.metadata?.annotations?.[ANNOTATIONS.contentHash] ?? contentHash({ code, settingsSchema }),
    configMapName: cm.metadata!.name!,
  };
}
