// The operator's HTTP face: /healthz (the process answers), /readyz (leading with synced caches and NATS, or
// a standby), /metrics (prom-client). Served by every replica, leader or not.

import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface OperatorProbe {
  readiness(): { ready: boolean; reason: string };
  role: string;
}

export async function startOperatorHttp(
  probe: OperatorProbe,
  registry: Registry,
  host: string,
  port: number,
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ status: 'ok', role: probe.role }));
  app.get('/readyz', async (_req, reply) => {
    const { ready, reason } = probe.readiness();
    return reply
      .code(ready ? 200 : 503)
      .send({ status: ready ? 'ready' : 'not ready', role: probe.role, reason });
  });
  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
  await app.listen({ host, port });
  return app;
}
