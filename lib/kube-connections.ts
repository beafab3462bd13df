// Kubernetes API requests over kept connections. @kubernetes/client-node 2.0 gives every request a new undici
// Agent (KubeConfig.applySecurityAuthentication → createDispatcher, which unlike createAgent has no cache), so
// each request opened its own TLS connection, handshake and client-certificate check on both ends included.

import { createHash } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { Cluster, KubeConfig } from '@kubernetes/client-node';
import { type Dispatcher, Pool } from 'undici';

type AgentOptions = Record<string, unknown>;
type CreateDispatcher = (cluster: Cluster | null, agentOptions: AgentOptions) => Dispatcher | undefined;

const POOLED = Symbol('dfn.pooledDispatchers');

/** The TLS material that makes a connection: a new certificate or CA (a reload, a rotation) gets its own. */
const TLS_FIELDS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

function identity(server: string, agentOptions: AgentOptions): string {
  const hash = createHash('sha256').update(server);
  for (const field of TLS_FIELDS) {
    const value = agentOptions[field];
    hash.update(`\0${field}=`);
    if (value !== undefined) hash.update(Buffer.isBuffer(value) ? value : JSON.stringify(value));
  }
  return hash.digest('hex');
}

/**
 * Makes `kc`'s requests share one connection pool per server and TLS identity instead of connecting anew each
 * time. Changes `kc` itself (its private createDispatcher, the one place client-node builds the per-request
 * dispatcher) and returns it; applying it twice changes nothing. A pool, not undici's Agent: undici 7's Agent
 * closes the pool of an origin whose connections all ended by looking the origin up again, which can close
 * its successor, and that one the next (nodejs/undici#5034, fixed only in 8, which needs Node 22): after a
 * server dropped the connections, every request connected anew again.
 */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createDispatcher: CreateDispatcher; [POOLED]?: true };
  if (target[POOLED]) return kc;
  const create = target.createDispatcher;
  if (typeof create !== 'function') {
    // A client-node that builds its dispatchers elsewhere: nothing to keep, and nothing broken.
    return kc;
  }
  const pools = new Map<string, Pool>();
  target.createDispatcher = (cluster, agentOptions) => {
    const options = kc.createDispatcherOptions(cluster, agentOptions);
    // Proxies (and no TLS at all) as client-node makes them.
    if (options.type !== 'agent' || !cluster) return create.call(kc, cluster, agentOptions);
    const key = identity(cluster.server, agentOptions);
    let pool = pools.get(key);
    if (!pool) {
      const { ca, cert, key: privateKey, pfx, passphrase } = options.connect as Record<string, never>;
      pool = new Pool(new URL(cluster.server).origin, {
        // One TLS context for all its connections: made from the PEM texts, it cost as much as a handshake.
        connect: {
          ...options.connect,
          secureContext: createSecureContext({ ca, cert, key: privateKey, pfx, passphrase }),
        },
        // Longer than undici's 4 s, so bursts of requests find their connections again; shorter than what
        // servers keep an idle one (kube-apiserver 90 s, cloud load balancers 60 s), so we close first.
        keepAliveTimeout: 30_000,
      });
      pools.set(key, pool);
    }
    return pool;
  };
  target[POOLED] = true;
  return kc;
}
