// The runner's HTTP face for Kubernetes and Prometheus: /healthz (the process works), /readyz (it is
// consuming), /metrics (counters and gauges). Nothing here touches events.

import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface RunnerProbe {
  readiness(): { ready: boolean; reason: string };
  metrics: Registry;
}

export async function startHttpServer(
  probe: RunnerProbe,
  host: string,
  port: number,
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  // Liveness only says the event loop answers: a NATS outage must not get the pod restarted.
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const { ready, reason } = probe.readiness();
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', reason });
  });
  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', probe.metrics.contentType).send(await probe.metrics.metrics()),
  );
  await app.listen({ host, port });
  return app;
}

export function listeningPort(app: FastifyInstance): number {
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : 0;
}
