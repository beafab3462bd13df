// The runner's NATS connection: first contact within a deadline (a clear error if NATS cannot be reached),
// then reconnection forever, because a NATS restart must pause delivery, not end the runner.

import { type ConnectionOptions, connect, credsAuthenticator, type NatsConnection, NatsError } from 'nats';
import { displayServers, natsUrlCredentials } from '../lib/nats-url.js';
import type { Logger } from '../lib/telemetry.js';
import type { NatsAuth } from './config-loader.js';

export class NatsUnreachableError extends Error {
  override readonly name = 'NatsUnreachableError';
  readonly code = 'DFN_NATS_UNREACHABLE';
}

export interface NatsTarget {
  servers: string | string[];
  auth: NatsAuth;
  /** Shown by the server (connz), so operators can tell replicas apart. */
  name: string;
  connectTimeoutMs: number;
}

function describeError(err: unknown): string {
  if (err instanceof NatsError) {
    switch (err.code) {
      case 'CONNECTION_REFUSED':
        return 'connection refused';
      case 'TIMEOUT':
      case 'CONNECTION_TIMEOUT':
        return 'timed out';
      case 'AUTHORIZATION_VIOLATION':
        return 'authorization violation: the server refused the credentials';
      default:
        return err.message;
    }
  }
  return err instanceof Error ? err.message : String(err);
}

/** Credentials are wrong, not the network: retrying cannot help. */
function isAuthError(err: unknown): boolean {
  return (
    err instanceof NatsError &&
    [
      'AUTHORIZATION_VIOLATION',
      'BAD_CREDS',
      'BAD_AUTHENTICATION',
      'AUTHENTICATION_EXPIRED',
      'ACCOUNT_EXPIRED',
    ].includes(err.code)
  );
}

/** Connection options for the credentials of a config directory (or the CLI's flags): one of the three forms. */
export function authOptions(auth: NatsAuth): Partial<ConnectionOptions> {
  return {
    ...(auth.creds ? { authenticator: credsAuthenticator(auth.creds) } : {}),
    ...(auth.token ? { token: auth.token } : {}),
    ...(auth.user ? { user: auth.user, pass: auth.pass } : {}),
  };
}

export function connectionOptions(target: NatsTarget): ConnectionOptions {
  return {
    ...natsUrlCredentials(target.servers),
    name: target.name,
    timeout: Math.min(5000, target.connectTimeoutMs),
    // After the first contact: reconnect forever, buffering acks and publishes meanwhile.
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 250,
    pingInterval: 10_000,
    maxPingOut: 3,
    // Otherwise nats.js builds an Error (a stack trace captured) for every pull, every request and every
    // acknowledged ack, only to have a stack ready should it time out; our timeouts are logged by what
    // timed out, and the runner pays it per event.
    noAsyncTraces: true,
    ...authOptions(target.auth),
  };
}

/** Connects, retrying refused or timed-out attempts until connectTimeoutMs; then NatsUnreachableError. */
export async function connectNats(
  target: NatsTarget,
  log: Logger,
  signal?: AbortSignal,
): Promise<NatsConnection> {
  const servers = displayServers(target.servers);
  const deadline = Date.now() + target.connectTimeoutMs;
  let attempt = 0;
  for (;;) {
    attempt++;
    try {
      return await connect(connectionOptions(target));
    } catch (err) {
      if (isAuthError(err)) {
        throw new NatsUnreachableError(
          `NATS at ${servers} (nats.url) refused to connect: ${describeError(err)}`,
        );
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || signal?.aborted) {
        throw new NatsUnreachableError(
          `cannot reach NATS at ${servers} (nats.url): ${describeError(err)}; gave up after ${attempt} attempts ` +
            `in ${Math.round(target.connectTimeoutMs / 1000)}s (nats.connectTimeoutMs)`,
        );
      }
      log.warn({ servers, attempt, error: describeError(err) }, 'NATS not reachable yet, retrying');
      await new Promise((r) => setTimeout(r, Math.min(1000, remaining)));
    }
  }
}
