// The loopback ports of a `dfn up` stack: defaults a laptop expects (Kubernetes' and NATS's own), each with
// its flag, and a check before anything starts, so a taken port is one clear error rather than a dead server.

import { createServer } from 'node:net';

export interface UpPorts {
  /** The gateway's Segment HTTP API, forwarded to the gateway Pods. */
  gateway: number;
  nats: number;
  apiserver: number;
  etcd: number;
  etcdPeer: number;
  controllerManager: number;
}

export const DEFAULT_PORTS: UpPorts = {
  gateway: 8080,
  nats: 4222,
  apiserver: 6443,
  etcd: 2379,
  etcdPeer: 2380,
  controllerManager: 10257,
};

/** The flag that sets each port, for error messages and `--help`. */
export const PORT_FLAGS: Record<keyof UpPorts, string> = {
  gateway: '--gateway-port',
  nats: '--nats-port',
  apiserver: '--apiserver-port',
  etcd: '--etcd-port',
  etcdPeer: '--etcd-peer-port',
  controllerManager: '--controller-manager-port',
};

export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
  readonly code = 'DFN_UP_PORT_IN_USE';
  constructor(readonly taken: { what: keyof UpPorts; port: number }[]) {
    super(
      taken
        .map(
          ({ what, port }) =>
            `port ${port} (${what}) is already in use on 127.0.0.1: stop what holds it, or choose another with ${PORT_FLAGS[what]}`,
        )
        .join('\n'),
    );
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Throws PortInUseError naming every port of `ports` that something already listens on. */
export async function assertPortsFree(ports: UpPorts): Promise<void> {
  const entries = Object.entries(ports) as [keyof UpPorts, number][];
  const seen = new Map<number, keyof UpPorts>();
  for (const [what, port] of entries) {
    const other = seen.get(port);
    if (other)
      throw new Error(`${PORT_FLAGS[what]} and ${PORT_FLAGS[other]} are both ${port}: choose two ports`);
    seen.set(port, what);
  }
  const free = await Promise.all(entries.map(([, port]) => isFree(port)));
  const taken = entries.filter((_, i) => !free[i]).map(([what, port]) => ({ what, port }));
  if (taken.length) throw new PortInUseError(taken);
}
