// `dfn gateway`: runs the Segment-compatible HTTP gateway in the foreground, with JSON logs on stdout.
// Every flag has an environment-variable fallback, so the same image runs from a Deployment's env.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { createGateway, GATEWAY_DEFAULTS, type Gateway } from '../../gateway/server.js';
import { LIMITS } from '../../gateway/validate.js';
import { WRITE_KEYS_FORMAT, WriteKeysFileError } from '../../gateway/write-keys.js';
import { displayServers, displayUrl } from '../../lib/nats-url.js';
import { podHttpHost, podHttpPort, podPath } from '../../lib/pod-env.js';
import { LOG_LEVELS, processLogger, processRegistry, type TelemetryLogLevel } from '../../lib/telemetry.js';
import { parsePrefix } from './nats-options.js';

interface GatewayFlags {
  port: number;
  host: string;
  natsUrl: string;
  natsCreds?: string;
  writeKeys: string;
  prefix: string;
  publishTimeout: number;
  requestTimeout: number;
  shutdownGrace: number;
  maxConnections: number;
  maxInFlight: number;
  maxInFlightBytes: number;
  maxRequestStoredBytes: number;
  trustProxy?: string[];
  logLevel: TelemetryLogLevel;
  createStreams?: boolean;
}

function integer(min: number, max: number, what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${what} must be a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

function natsUrls(value: string): string {
  const urls = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (urls.length === 0) throw new InvalidArgumentError('give at least one NATS URL.');
  for (const url of urls) {
    // nats.js accepts host:port without a scheme; check what the URL parser would make of it.
    const withScheme = /^[a-z]+:\/\//i.test(url) ? url : `nats://${url}`;
    let parsed: URL;
    try {
      parsed = new URL(withScheme);
    } catch {
      throw new InvalidArgumentError(
        `"${displayUrl(url)}" is not a URL (expected e.g. nats://nats.nats.svc:4222).`,
      );
    }
    if (!['nats:', 'tls:', 'ws:', 'wss:'].includes(parsed.protocol) || parsed.hostname === '') {
      throw new InvalidArgumentError(
        `"${displayUrl(url)}" is not a NATS URL (expected e.g. nats://nats.nats.svc:4222).`,
      );
    }
  }
  return urls.join(',');
}

/** How long after the grace period a shutdown that has not completed is cut short. */
const SHUTDOWN_BACKSTOP_MS = 10_000;

/** Addresses and CIDR ranges of trusted proxies, comma-separated. */
function proxyList(value: string): string[] {
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const entry of entries) {
    const [address = '', bits, ...rest] = entry.split('/');
    const family = isIP(address);
    const max = family === 6 ? 128 : 32;
    const badBits = bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > max);
    if (family === 0 || badBits || rest.length > 0) {
      throw new InvalidArgumentError(
        `"${entry}" is not an IP address or CIDR range (expected e.g. 10.0.0.0/8 or fd00::/8).`,
      );
    }
  }
  return entries;
}

const kb = (bytes: number) => `${bytes / 1024} KB`;

const HELP_AFTER = `
Endpoints (Segment's HTTP Tracking API; point a Segment library's host here):
  POST /v1/identify /v1/track /v1/page /v1/screen /v1/group /v1/alias
  POST /v1/batch (alias /v1/import)       up to ${LIMITS.batchEvents} events, ${kb(LIMITS.batchBytes)}; ${kb(LIMITS.eventBytes)} per event
  GET  /healthz /readyz /metrics          liveness, readiness (NATS connected), Prometheus

Authentication: the write key as the Basic-auth username with an empty password, or as
"writeKey" in the JSON body. Unknown or missing keys get 401 and nothing is published.

Answers: 200 once JetStream stored every accepted event; 400 with a code and message for
invalid input (a batch lists rejected events and accepts the rest); 503 or 429 with
Retry-After when events could not be stored: resend, messageIds make the retry safe.
A request whose headers, or then its body, take longer than --request-timeout gets 408.

Fairness: what the gateway holds for open requests (--max-in-flight, --max-in-flight-bytes)
is shared between write keys, and within a key between client addresses (IPv6 by /64; behind
a load balancer, name it with --trust-proxy). A client alone may use all of it; while others
want their share, a client holding more than its own gets 429 with Retry-After.

Write-keys file (--write-keys), re-read when it changes:
${WRITE_KEYS_FORMAT.replace(/^(?=.)/gm, '  ')}

Events are published to the stream <PREFIX>_EVENTS under <prefix>.events.<source>.<type>.
In a cluster the operator creates the streams; for local use pass --create-streams.

Examples:
  dfn gateway --write-keys ./write-keys.yaml --nats-url nats://127.0.0.1:4222 --create-streams
  curl -u 3fa85f64wk1: -H 'content-type: application/json' \\
    -d '{"userId":"u1","event":"Signed Up"}' http://127.0.0.1:${GATEWAY_DEFAULTS.port}/v1/track
`;

export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .summary("run the HTTP gateway: Segment's Tracking API into JetStream")
    .description(
      "Run the gateway: accept events on Segment's HTTP Tracking API, check them as Segment does, " +
        'and publish each to JetStream under its source and type. Logs are JSON lines on stdout.',
    )
    .addOption(
      new Option('-p, --port <port>', 'TCP port to listen on (0 picks a free one)')
        .env('DFN_GATEWAY_PORT')
        .default(GATEWAY_DEFAULTS.port)
        .argParser(integer(0, 65535, 'the port')),
    )
    .addOption(
      new Option('--host <address>', 'address to listen on; 127.0.0.1 keeps the gateway local')
        .env('DFN_GATEWAY_HOST')
        .default(GATEWAY_DEFAULTS.host),
    )
    .addOption(
      new Option(
        '-n, --nats-url <urls>',
        'NATS server URL, or several comma-separated (a cluster); env NATS_URL also works',
      )
        .env('DFN_NATS_URL')
        .default(process.env.NATS_URL || GATEWAY_DEFAULTS.natsUrl)
        .argParser(natsUrls),
    )
    .addOption(
      new Option('--nats-creds <file>', 'NATS credentials (.creds) file, for a NATS with auth').env(
        'NATS_CREDS',
      ),
    )
    .addOption(
      new Option(
        '-w, --write-keys <file>',
        'YAML/JSON file mapping write keys to source names (format below)',
      )
        .env('DFN_WRITE_KEYS_FILE')
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--prefix <prefix>', 'JetStream prefix: subject stem and stream-name stem of this install')
        .env('DFN_PREFIX')
        .default(GATEWAY_DEFAULTS.prefix)
        .argParser(parsePrefix),
    )
    .addOption(
      new Option(
        '--publish-timeout <ms>',
        'how long JetStream may take to acknowledge before the client gets 503',
      )
        .env('DFN_GATEWAY_PUBLISH_TIMEOUT_MS')
        .default(GATEWAY_DEFAULTS.publishTimeoutMs)
        .argParser(integer(100, 120_000, 'the publish timeout')),
    )
    .addOption(
      new Option(
        '--request-timeout <ms>',
        'time a client has to send the headers of a request, and then again its body; later: 408',
      )
        .env('DFN_GATEWAY_REQUEST_TIMEOUT_MS')
        .default(GATEWAY_DEFAULTS.requestTimeoutMs)
        .argParser(integer(100, 600_000, 'the request timeout')),
    )
    .addOption(
      new Option(
        '--shutdown-grace <ms>',
        'on SIGTERM, how long open requests may finish before they get 503 and the process exits',
      )
        .env('DFN_GATEWAY_SHUTDOWN_GRACE_MS')
        .default(GATEWAY_DEFAULTS.shutdownGraceMs)
        .argParser(integer(0, 600_000, 'the shutdown grace period')),
    )
    .addOption(
      new Option('--max-connections <n>', 'open connections at most; more are closed as they arrive')
        .env('DFN_GATEWAY_MAX_CONNECTIONS')
        .default(GATEWAY_DEFAULTS.maxConnections)
        .argParser(integer(1, 10_000_000, 'the connection limit')),
    )
    .addOption(
      new Option(
        '--max-in-flight <events>',
        'events awaiting acknowledgement: the in-flight budget, shared fairly between clients',
      )
        .env('DFN_GATEWAY_MAX_IN_FLIGHT')
        .default(GATEWAY_DEFAULTS.maxInFlightEvents)
        .argParser(integer(LIMITS.batchEvents, 10_000_000, 'the in-flight limit')),
    )
    .addOption(
      new Option(
        '--max-in-flight-bytes <bytes>',
        'bytes held for open requests (bodies, events awaiting acks): the in-flight budget; ' +
          'clients within their fair share may go beyond, up to twice it (the memory bound)',
      )
        .env('DFN_GATEWAY_MAX_IN_FLIGHT_BYTES')
        .default(GATEWAY_DEFAULTS.maxInFlightBytes)
        .argParser(integer(LIMITS.batchBytes, 2 ** 40, 'the in-flight byte limit')),
    )
    .addOption(
      new Option(
        '--max-request-stored-bytes <bytes>',
        "bytes a batch's events may take as stored, its context copied into each; more: 400",
      )
        .env('DFN_GATEWAY_MAX_REQUEST_STORED_BYTES')
        .default(GATEWAY_DEFAULTS.maxRequestStoredBytes)
        .argParser(integer(LIMITS.batchBytes, 2 ** 40, 'the stored-bytes limit')),
    )
    .addOption(
      new Option(
        '--trust-proxy <addresses>',
        'proxies (IPs or CIDR ranges, comma-separated) whose X-Forwarded-For names the client',
      )
        .env('DFN_GATEWAY_TRUST_PROXY')
        .argParser(proxyList),
    )
    .addOption(
      new Option('--log-level <level>', 'least severe log level written; "debug" logs every accepted request')
        .env('DFN_LOG_LEVEL')
        .choices(LOG_LEVELS)
        .default('info'),
    )
    .addOption(
      new Option(
        '--create-streams',
        'create the JetStream streams if missing (local use; in a cluster the operator owns them) ' +
          '(env: DFN_CREATE_STREAMS=true|false)',
      ),
    )
    .addHelpText('after', HELP_AFTER)
    .action(async (flags: GatewayFlags, cmd: Command) => {
      await runGateway(flags, cmd);
    });
}

async function runGateway(given: GatewayFlags, cmd: Command): Promise<void> {
  // Run by the local kubelet: mounted files under DFN_POD_ROOT, the Pod's remapped port (lib/pod-env.ts).
  let flags: GatewayFlags;
  try {
    flags = {
      ...given,
      writeKeys: podPath(given.writeKeys),
      ...(given.natsCreds ? { natsCreds: podPath(given.natsCreds) } : {}),
      port: podHttpPort() ?? given.port,
      host: podHttpHost() ?? given.host,
    };
  } catch (err) {
    return cmd.error(`dfn gateway: ${(err as Error).message}`, { exitCode: 2 });
  }
  let natsCreds: Uint8Array | undefined;
  if (flags.natsCreds) {
    try {
      natsCreds = new Uint8Array(readFileSync(flags.natsCreds));
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      cmd.error(`dfn gateway: cannot read --nats-creds ${flags.natsCreds}: ${reason}`, { exitCode: 2 });
    }
  }
  let gateway: Gateway;
  try {
    gateway = await createGateway({
      writeKeysFile: flags.writeKeys,
      natsUrl: flags.natsUrl,
      ...(natsCreds ? { natsCreds } : {}),
      prefix: flags.prefix,
      publishTimeoutMs: flags.publishTimeout,
      requestTimeoutMs: flags.requestTimeout,
      shutdownGraceMs: flags.shutdownGrace,
      maxConnections: flags.maxConnections,
      maxInFlightEvents: flags.maxInFlight,
      maxInFlightBytes: flags.maxInFlightBytes,
      maxRequestStoredBytes: flags.maxRequestStoredBytes,
      ...(flags.trustProxy ? { trustProxy: flags.trustProxy } : {}),
      createStreams: flags.createStreams === true || envSwitch('DFN_CREATE_STREAMS', cmd),
      log: processLogger('gateway', flags.logLevel),
      registry: processRegistry('dfn_gateway_'),
    });
  } catch (err) {
    if (err instanceof WriteKeysFileError) {
      cmd.error(`dfn gateway: ${err.message}\n(run dfn gateway --help for the file's format)`, {
        exitCode: 2,
        code: 'dfn.writeKeys',
      });
    }
    throw err;
  }

  const log = gateway.app.log;
  if (gateway.writeKeys.size === 0)
    log.warn({ file: flags.writeKeys }, 'the write-keys file has no keys yet');
  try {
    await gateway.listen(flags.port, flags.host);
  } catch (err) {
    process.stderr.write(
      `dfn gateway: cannot listen on ${flags.host}:${flags.port}: ${(err as Error).message}\n`,
    );
    await gateway.close();
    process.exit(1);
  }
  log.info(
    {
      writeKeys: gateway.writeKeys.size,
      sources: gateway.writeKeys.sources,
      stream: gateway.topology.eventsStream,
      nats: displayServers(flags.natsUrl),
    },
    'gateway started',
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without finishing in-flight requests');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    // close() ends open requests after the grace period itself; this only covers a NATS drain that
    // hangs, so the process exits before Kubernetes has to kill it.
    setTimeout(() => {
      log.error({ signal }, 'shutdown did not complete in time: exiting');
      process.exit(1);
    }, flags.shutdownGrace + SHUTDOWN_BACKSTOP_MS).unref();
    gateway.close().then(
      () => process.exit(0),
      (err) => {
        log.error({ error: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * A true/false environment switch. Commander turns a flag on whenever its env variable exists, even
 * when it says "false", so switches are read here, strictly.
 */
function envSwitch(name: string, cmd: Command): boolean {
  const value = process.env[name]?.trim() ?? '';
  if (value === '' || /^(0|false|no|off)$/i.test(value)) return false;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  cmd.error(`dfn gateway: ${name} must be true or false, not "${value}"`, {
    exitCode: 2,
    code: 'dfn.envSwitch',
  });
}
