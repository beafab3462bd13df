// Cross-origin access for browser clients (analytics.js posts from the site's own origin). The tracking
// endpoints are write-only and keyed by a write key that browsers see anyway, so any origin may call.

import type { FastifyInstance } from 'fastify';

const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'Content-Type, Content-Encoding, Authorization',
  'access-control-max-age': '86400',
};

/** Answers preflights for `paths` and lets browsers read the answers to their POSTs. */
export function registerCors(app: FastifyInstance, paths: readonly string[]): void {
  const tracking = new Set(paths);
  for (const url of paths) {
    app.options(url, async (_req, reply) => reply.code(204).headers(CORS_HEADERS).send());
  }
  app.addHook('onSend', async (req, reply) => {
    if (tracking.has(req.routeOptions.url ?? '')) void reply.header('access-control-allow-origin', '*');
  });
}
