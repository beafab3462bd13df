// What a dfn process learns from the local kubelet (local/kubelet/), which runs Pods as plain processes:
// DFN_POD_ROOT, the private root its volumes are mounted under, DFN_HTTP_PORT, its remapped port, and
// DFN_HTTP_HOST, the address to serve it on (the Pod IP the kubelet reports, loopback).

import { isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';

/**
 * An absolute path as the container sees it, resolved on this machine: under DFN_POD_ROOT when the
 * local kubelet runs us, unchanged in a real container (no DFN_POD_ROOT). Relative paths stay relative.
 */
export function podPath(path: string, env: NodeJS.ProcessEnv = process.env): string {
  const root = env.DFN_POD_ROOT;
  return root && isAbsolute(path) && !path.startsWith(`${root}/`) ? join(root, path) : path;
}

/** The port to serve HTTP on instead of the configured one (the kubelet's remapping), if any. */
export function podHttpPort(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.DFN_HTTP_PORT;
  if (raw === undefined || raw === '') return undefined;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65_535) {
    throw new PodEnvError(`DFN_HTTP_PORT must be a port number from 0 to 65535 (got "${raw}")`);
  }
  return port;
}

/**
 * The address to serve HTTP on instead of the configured one, if any. The local kubelet gives loopback: on a
 * laptop a Pod's port is a port of the machine, and a container's usual 0.0.0.0 would open the gateway,
 * metrics and health endpoints to the network.
 */
export function podHttpHost(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env.DFN_HTTP_HOST;
  if (raw === undefined || raw === '') return undefined;
  if (isIP(raw) === 0) throw new PodEnvError(`DFN_HTTP_HOST must be an IP address (got "${raw}")`);
  return raw;
}

/** The prefix @kubernetes/client-node's in-cluster config puts before /var/run/secrets/… ('' in a cluster). */
export function inClusterPathPrefix(env: NodeJS.ProcessEnv = process.env): string {
  return env.DFN_POD_ROOT ?? '';
}

export class PodEnvError extends Error {
  override readonly name = 'PodEnvError';
  readonly code = 'DFN_POD_ENV';
}
