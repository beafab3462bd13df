// The downward API, as a kubelet answers it: a Pod's own fields (fieldRef) and its containers' resources
// (resourceFieldRef), for env values and downwardAPI volume files alike.

import { cpus, totalmem } from 'node:os';
import type { V1ObjectFieldSelector, V1Pod, V1ResourceFieldSelector } from '@kubernetes/client-node';
import { quantityValue } from '../../api/kube-types.js';
import { KubeletError } from './errors.js';

export const LOOPBACK = '127.0.0.1';

const LABEL_OR_ANNOTATION = /^metadata\.(labels|annotations)\['(.+)'\]$/;

export function fieldValue(pod: V1Pod, ref: V1ObjectFieldSelector): string {
  const path = ref.fieldPath;
  const keyed = LABEL_OR_ANNOTATION.exec(path);
  if (keyed) {
    const map = keyed[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[keyed[2]!] ?? '';
  }
  switch (path) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'metadata.labels':
      return formatMap(pod.metadata?.labels);
    case 'metadata.annotations':
      return formatMap(pod.metadata?.annotations);
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    // Every Pod of this kubelet lives on loopback (there is no Pod network).
    case 'status.podIP':
    case 'status.podIPs':
    case 'status.hostIP':
    case 'status.hostIPs':
      return LOOPBACK;
    default:
      throw new KubeletError('CreateContainerConfigError', `unsupported fieldRef ${path}`);
  }
}

// The format of a downwardAPI volume's labels/annotations file: key="value" per line, sorted.
function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(map![k])}`)
    .join('\n');
}

/** A Kubernetes quantity (500m, 128Mi, 1e3, 2) as a number. */
export function parseQuantity(quantity: string | number): number {
  const value = quantityValue(quantity);
  if (value === undefined)
    throw new KubeletError('CreateContainerConfigError', `"${quantity}" is not a quantity`);
  return value;
}

/** A container's requests or limits, in resourceFieldRef's units; limits default to the node's size. */
export function resourceValue(pod: V1Pod, ref: V1ResourceFieldSelector, defaultContainer?: string): string {
  const name = ref.containerName ?? defaultContainer;
  const container = pod.spec?.containers.find((c) => c.name === name);
  if (!container)
    throw new KubeletError('CreateContainerConfigError', `resourceFieldRef: no container ${name}`);
  const [kind, resource] = ref.resource.split('.') as ['limits' | 'requests', string];
  const declared = container.resources?.[kind]?.[resource];
  const nodeSize: Record<string, number> = { cpu: cpus().length, memory: totalmem(), 'ephemeral-storage': 0 };
  const value = declared !== undefined ? parseQuantity(declared) : kind === 'limits' ? nodeSize[resource] : 0;
  if (value === undefined)
    throw new KubeletError('CreateContainerConfigError', `unsupported resource ${ref.resource}`);
  const divisor = parseQuantity(ref.divisor ?? 1);
  return String(Math.ceil(value / divisor));
}
