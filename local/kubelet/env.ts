// A container's environment as a kubelet builds it: envFrom, then env in order (values, ConfigMap and
// Secret keys, the downward API), $(VAR) references expanded; plus what this kubelet adds.

import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { fieldValue, resourceValue } from './downward.js';
import { KubeletError } from './errors.js';
import type { Sources } from './sources.js';

const C_IDENTIFIER = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/**
 * Kubernetes' $(VAR) expansion: a reference to a defined variable is replaced, `$$` is a literal `$`,
 * an undefined reference stays as written.
 */
export function expand(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([^)]*)\)/g, (match, name: string | undefined) => {
    if (match === '$$') return '$';
    return name !== undefined && Object.hasOwn(vars, name) ? vars[name]! : match;
  });
}

/** The variables the Pod asks for, in the order Kubernetes applies them; `base` comes first. */
export function containerEnv(
  pod: V1Pod,
  container: V1Container,
  sources: Sources,
  base: Record<string, string>,
): Record<string, string> {
  const namespace = pod.metadata!.namespace!;
  const env: Record<string, string> = { ...base };
  for (const from of container.envFrom ?? []) {
    const kind = from.configMapRef ? 'ConfigMap' : 'Secret';
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref) continue;
    const entries = sources.entries(kind, namespace, ref.name!, ref.optional ?? false);
    for (const [key, value] of entries ?? []) {
      const name = `${from.prefix ?? ''}${key}`;
      // As a kubelet does, keys that are not valid variable names are skipped.
      if (C_IDENTIFIER.test(name)) env[name] = value.toString('utf8');
    }
  }
  for (const v of container.env ?? []) {
    const source = v.valueFrom;
    if (!source) {
      env[v.name] = expand(v.value ?? '', env);
    } else if (source.configMapKeyRef || source.secretKeyRef) {
      const kind = source.configMapKeyRef ? 'ConfigMap' : 'Secret';
      const ref = (source.configMapKeyRef ?? source.secretKeyRef)!;
      const value = sources.key(kind, namespace, ref.name!, ref.key, ref.optional ?? false);
      if (value !== undefined) env[v.name] = value.toString('utf8');
    } else if (source.fieldRef) {
      env[v.name] = fieldValue(pod, source.fieldRef);
    } else if (source.resourceFieldRef) {
      env[v.name] = resourceValue(pod, source.resourceFieldRef, container.name);
    } else {
      throw new KubeletError('CreateContainerConfigError', `env ${v.name}: unsupported valueFrom`);
    }
  }
  return env;
}
