// Free loopback ports for the servers a process starts (tests, the local control plane, the kubelet's
// containers). Another process may take a port between this check and its use: callers retry on EADDRINUSE.

import { createServer } from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
