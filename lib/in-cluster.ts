// Kubernetes credentials of the Pod a dfn process runs in (the operator's; runner Pods mount none), as
// @kubernetes/client-node reads them, with the local kubelet's DFN_POD_ROOT in front of their paths.

import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { reuseConnections } from './kube-connections.js';
import { inClusterPathPrefix } from './pod-env.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export class NotInClusterError extends Error {
  override readonly name = 'NotInClusterError';
  readonly code = 'DFN_NOT_IN_CLUSTER';
}

/** The in-cluster config; throws NotInClusterError when this process has no service-account token. */
export function inClusterKubeConfig(env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const prefix = inClusterPathPrefix(env);
  const token = `${prefix}${SERVICE_ACCOUNT_DIR}/token`;
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT || !existsSync(token)) {
    throw new NotInClusterError(
      `no in-cluster credentials: needs KUBERNETES_SERVICE_HOST/PORT and a token at ${token} (does the Pod mount a service-account token?)`,
    );
  }
  const kc = new KubeConfig();
  kc.loadFromCluster(prefix);
  return reuseConnections(kc);
}
