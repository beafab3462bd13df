// The gateway's Prometheus metrics: requests, events, bytes, rejects by reason and publish latency.
// Names are part of the operator-facing contract (dashboards, alerts): documented in docs/gateway.md.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LATENCY_BUCKETS } from '../lib/telemetry.js';

/**
 * The gateway's series on `registry`. `dfn gateway` passes its process registry (default metrics included);
 * a gateway embedded in another process (tests, benchmarks) gets one of its own series only.
 */
export function gatewayMetrics(registry: Registry = new Registry()) {
  const registers = [registry];
  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers });
  const gauge = (name: string, help: string) => new Gauge({ name, help, registers });
  return {
    registry,
    requests: counter('dfn_gateway_requests_total', 'HTTP requests answered, by route and status code', [
      'route',
      'status',
    ]),
    requestBytes: counter(
      'dfn_gateway_request_bytes_total',
      'Request body bytes read (after decompression), by route',
      ['route'],
    ),
    events: counter(
      'dfn_gateway_events_total',
      'Events acknowledged by JetStream (duplicates included), by source and type',
      ['source', 'type'],
    ),
    duplicates: counter(
      'dfn_gateway_events_duplicate_total',
      'Events JetStream recognised as a resent messageId and stored only once, by source',
      ['source'],
    ),
    rejects: counter(
      'dfn_gateway_rejects_total',
      'Rejected requests and batch events, by reason (the error code sent to the client)',
      ['reason'],
    ),
    publishDuration: new Histogram({
      name: 'dfn_gateway_publish_duration_seconds',
      help: "Time from publishing a request's events until JetStream acknowledged all of them",
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    publishFailures: counter(
      'dfn_gateway_publish_failures_total',
      'Requests whose events JetStream did not acknowledge, by reason',
      ['reason'],
    ),
    inFlightBytes: gauge(
      'dfn_gateway_in_flight_bytes',
      'Bytes held for open requests: bodies being read, and events awaiting acknowledgement',
    ),
    inFlightKeys: gauge(
      'dfn_gateway_in_flight_write_keys',
      'Write keys with a request open, among which the in-flight budget is shared',
    ),
    inFlightClients: gauge(
      'dfn_gateway_in_flight_clients',
      'Clients (write key and address) with a request open, among which a key share is divided',
    ),
    connectionsDropped: counter(
      'dfn_gateway_connections_dropped_total',
      'Connections closed as they arrived because --max-connections were open',
    ),
    refusals: counter(
      'dfn_gateway_refusals_total',
      'Requests refused a part of the in-flight budget, by reason (GW_THROTTLED, GW_OVERLOADED)',
      ['reason'],
    ),
    eventsInFlight: gauge('dfn_gateway_events_in_flight', 'Events published and awaiting acknowledgement'),
    natsConnected: gauge('dfn_gateway_nats_connected', '1 while connected to NATS, else 0'),
    writeKeys: gauge('dfn_gateway_write_keys', 'Write keys currently accepted'),
    writeKeysReloads: counter(
      'dfn_gateway_write_keys_reloads_total',
      'Re-reads of the write-keys file that changed it, by result (ok, error)',
      ['result'],
    ),
  };
}

export type GatewayMetrics = ReturnType<typeof gatewayMetrics>;
