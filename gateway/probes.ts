// The operational endpoints: /healthz (liveness), /readyz (readiness: connected to NATS, not stopping)
// and /metrics (Prometheus). Kubernetes probes and scrapers use these; clients never do.

import type { FastifyInstance } from 'fastify';
import type { GatewayMetrics } from './metrics.js';
import type { NatsLink } from './nats-link.js';

export interface ProbeDeps {
  link: NatsLink;
  metrics: GatewayMetrics;
  isClosing: () => boolean;
}

export function registerProbes(app: FastifyInstance, { link, metrics, isClosing }: ProbeDeps): void {
  // Live unless the NATS connection is gone for good (it retries forever, so only a fatal error such as
  // an authorization failure closes it): then a restart is the only cure.
  app.get('/healthz', async (_req, reply) => {
    const dead = link.state === 'closed' && !isClosing();
    return reply.code(dead ? 503 : 200).send({ status: dead ? 'nats connection closed' : 'ok' });
  });

  // Ready when events can be accepted: a gateway without NATS, or without its acks, would only answer 503s.
  app.get('/readyz', async (_req, reply) => {
    const problem = link.publishProblem;
    const ready = link.state === 'connected' && !problem && !isClosing();
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not ready',
      nats: link.state,
      ...(problem ? { publish: problem } : {}),
      ...(isClosing() ? { shuttingDown: true } : {}),
    });
  });

  app.get('/metrics', async (_req, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}
