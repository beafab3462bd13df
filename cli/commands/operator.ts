// `dfn operator`: runs the operator in the foreground (JSON logs on stdout, /healthz /readyz /metrics), from a
// kubeconfig or the Pod's in-cluster credentials. Every flag has an environment fallback for a Deployment.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { KubeConfig, type V1ResourceRequirements } from '@kubernetes/client-node';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_HEALTH_POLICY } from '../../api/delivery-status.js';
import { topology } from '../../api/jetstream.js';
import { quantityValue, ResourceRequirementsSchema } from '../../api/kube-types.js';
import { inClusterKubeConfig } from '../../lib/in-cluster.js';
import { reuseConnections } from '../../lib/kube-connections.js';
import { displayServers, natsUrlCredentials } from '../../lib/nats-url.js';
import { podHttpHost, podHttpPort, podPath } from '../../lib/pod-env.js';
import { LOG_LEVELS, processLogger, type TelemetryLogLevel } from '../../lib/telemetry.js';
import type { RunnerNatsAuth } from '../../operator/index.js';
import { authOptions } from '../../runner/nats-connection.js';
import { addNatsOptions, CliUsageError, cliNatsAuth, type NatsFlags, runCli } from './nats-options.js';

interface OperatorFlags extends NatsFlags {
  kubeconfig?: string;
  namespace?: string[];
  runnerImage: string;
  runnerImagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  runnerNatsUrl?: string;
  runnerNatsCreds?: string;
  runnerNatsTokenFile?: string;
  runnerNatsUser?: string;
  runnerNatsPasswordFile?: string;
  runnerProgressDeadline: number;
  runnerResources?: V1ResourceRequirements;
  writeKeysSecret?: { namespace: string; name: string };
  writeKeysKey: string;
  allowPrivateNetwork: string[];
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
  statusInterval: number;
  deliveryPollInterval: number;
  healthWindow: number;
  healthMinAttempts: number;
  healthUnhealthyRatio: number;
  healthHealthyRatio: number;
  runnerStatsInterval?: number;
  resync: number;
  revisionHistory: number;
  streamStorage: 'file' | 'memory';
  streamReplicas: number;
  httpHost: string;
  httpPort: number;
  logLevel: TelemetryLogLevel;
}

/** --runner-resources: a container's resources as JSON, checked as the CRD checks spec.resources. */
function resources(value: string): V1ResourceRequirements {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('expected JSON, e.g. {"requests":{"cpu":"100m","memory":"384Mi"}}.');
  }
  const result = ResourceRequirementsSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new InvalidArgumentError(`${issue.message}${where}.`);
  }
  // Kubernetes would refuse every runner Deployment instead: say it once, here.
  const { requests = {}, limits = {} } = result.data;
  for (const [name, limit] of Object.entries(limits)) {
    const request = requests[name];
    // Both are quantities (the schema checked them).
    if (request !== undefined && quantityValue(request)! > quantityValue(limit)!) {
      throw new InvalidArgumentError(`requests.${name} (${request}) is above limits.${name} (${limit}).`);
    }
  }
  return result.data as V1ResourceRequirements;
}

function whole(min: number, max: number, what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`${what} must be a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

function ratio(what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
      throw new InvalidArgumentError(`${what} must be a number from 0 to 1.`);
    }
    return n;
  };
}

const list = (value: string) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function secretRef(value: string): { namespace: string; name: string } {
  const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected <namespace>/<name> (got "${value}").`);
  return { namespace: m[1]!, name: m[2]! };
}

const HELP_AFTER = `
What it does: watches DestinationFunctions and FunctionInstances (all namespaces, or those of
--namespace) and makes runners deliver: a revision ConfigMap per code change, per instance a
config ConfigMap, a runner Deployment (image --runner-image) and a durable JetStream consumer;
it creates the streams at start and writes delivery status back. One replica reconciles at a
time (a Lease); the others stand by and take over when it stops or dies.

Runners get their NATS credentials from a Secret the operator keeps in each namespace with
instances (dfn-runner-nats), from --runner-nats-token-file / --runner-nats-creds /
--runner-nats-user + --runner-nats-password-file; none given, runners connect without.

Delivery status: runners publish their counters every --runner-stats-interval; the operator
adds them up per instance (never backwards: a restarted runner or operator continues from
status), reads each consumer's backlog every --delivery-poll-interval, and sets Healthy from
the failure ratio of the last --health-window (docs/delivery-status.md).

Endpoints: GET /healthz /readyz /metrics on --http-host:--http-port.
Signals: SIGTERM or SIGINT ends reconciles under way, releases the lease and exits 0.
RBAC it needs: docs/operator.md.

Examples:
  dfn operator --runner-image ghcr.io/acme/dfn:0.1.0 --nats-url nats://nats.nats.svc:4222 \\
    --write-keys-secret dfn/gateway-write-keys --allow-private-network staging
  dfn operator --kubeconfig ~/.kube/config --namespace team-a --no-leader-elect ...
`;

export function registerOperatorCommand(program: Command): void {
  const command = program
    .command('operator')
    .summary('run the operator: functions and instances reconciled into runners')
    .description(
      'Run the Kubernetes operator: reconcile DestinationFunctions and FunctionInstances into revision ' +
        'ConfigMaps, runner Deployments and JetStream consumers, and write delivery status back.',
    )
    .option(
      '--kubeconfig <file>',
      'kubeconfig to use (env KUBECONFIG); default: in-cluster, else ~/.kube/config',
    )
    .addOption(
      new Option('--namespace <namespaces>', 'namespaces to reconcile, comma-separated (default: all)')
        .env('DFN_WATCH_NAMESPACES')
        .argParser(list),
    )
    .addOption(
      new Option('--runner-image <image>', 'the dfn image runner pods run')
        .env('DFN_RUNNER_IMAGE')
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--runner-image-pull-policy <policy>', 'imagePullPolicy of runner pods')
        .env('DFN_RUNNER_IMAGE_PULL_POLICY')
        .choices(['Always', 'IfNotPresent', 'Never'])
        .default('IfNotPresent'),
    )
    .addOption(
      new Option('--runner-nats-url <urls>', 'NATS URL(s) runners use (default: --nats-url)').env(
        'DFN_RUNNER_NATS_URL',
      ),
    )
    .addOption(
      new Option('--runner-nats-creds <file>', "runners' NATS .creds file").env('DFN_RUNNER_NATS_CREDS'),
    )
    .addOption(
      new Option('--runner-nats-token-file <file>', "file holding the runners' NATS token").env(
        'DFN_RUNNER_NATS_TOKEN_FILE',
      ),
    )
    .addOption(new Option('--runner-nats-user <name>', "runners' NATS user").env('DFN_RUNNER_NATS_USER'))
    .addOption(
      new Option('--runner-nats-password-file <file>', 'file holding the password of --runner-nats-user').env(
        'DFN_RUNNER_NATS_PASSWORD_FILE',
      ),
    )
    .addOption(
      new Option('--runner-progress-deadline <seconds>', 'a rollout not done by then reports RunnerNotReady')
        .env('DFN_RUNNER_PROGRESS_DEADLINE')
        .default(600)
        .argParser(whole(10, 86_400, 'the progress deadline')),
    )
    .addOption(
      new Option(
        '--runner-resources <json>',
        "runner containers' requests and limits where an instance gives no spec.resources " +
          "(default: sized from the function's memory limit)",
      )
        .env('DFN_RUNNER_RESOURCES')
        .argParser(resources),
    )
    .addOption(
      new Option(
        '--write-keys-secret <namespace/name>',
        "the gateway's write-keys Secret: instances of other sources report SourceUnknown (default: unchecked)",
      )
        .env('DFN_WRITE_KEYS_SECRET')
        .argParser(secretRef),
    )
    .addOption(
      new Option('--write-keys-key <key>', 'the key of that Secret holding the write-keys YAML')
        .env('DFN_WRITE_KEYS_KEY')
        .default('write-keys.yaml'),
    )
    .addOption(
      new Option(
        '--allow-private-network <namespaces>',
        "namespaces whose instances may set spec.network.allowPrivateNetwork ('*' for all; default none)",
      )
        .env('DFN_ALLOW_PRIVATE_NETWORK')
        .argParser(list)
        .default([]),
    )
    .option('--no-leader-elect', 'reconcile without a leader lease (only ever one operator)')
    .addOption(
      new Option('--lease-namespace <namespace>', 'namespace of the leader Lease (env POD_NAMESPACE)')
        .env('DFN_LEASE_NAMESPACE')
        .default(process.env.POD_NAMESPACE || 'default'),
    )
    .addOption(
      new Option('--lease-name <name>', 'name of the leader Lease')
        .env('DFN_LEASE_NAME')
        .default('dfn-operator'),
    )
    .addOption(
      new Option('--lease-duration <ms>', 'a lease not renewed for this long may be taken over')
        .default(15_000)
        .argParser(whole(1000, 600_000, 'the lease duration')),
    )
    .addOption(
      new Option('--renew-deadline <ms>', 'the leader stops leading when it could not renew for this long')
        .default(10_000)
        .argParser(whole(500, 600_000, 'the renew deadline')),
    )
    .addOption(
      new Option('--retry-period <ms>', 'between attempts to acquire or renew the lease')
        .default(2_000)
        .argParser(whole(100, 60_000, 'the retry period')),
    )
    .addOption(
      new Option('--status-interval <ms>', 'least time between two status writes of one object')
        .env('DFN_STATUS_INTERVAL_MS')
        .default(2_000)
        .argParser(whole(0, 600_000, 'the status interval')),
    )
    .addOption(
      new Option(
        '--runner-stats-interval <ms>',
        "how often runners publish their counters (default: the runner's, 5000); status follows at that pace",
      )
        .env('DFN_RUNNER_STATS_INTERVAL_MS')
        .argParser(whole(100, 600_000, 'the runner stats interval')),
    )
    .addOption(
      new Option('--delivery-poll-interval <ms>', "how often each instance's backlog and retrying are read")
        .env('DFN_DELIVERY_POLL_INTERVAL_MS')
        .default(5_000)
        .argParser(whole(100, 600_000, 'the delivery poll interval')),
    )
    .addOption(
      new Option('--health-window <ms>', 'Healthy judges the delivery attempts of this last stretch of time')
        .env('DFN_HEALTH_WINDOW_MS')
        .default(DEFAULT_HEALTH_POLICY.windowMs)
        .argParser(whole(1000, 86_400_000, 'the health window')),
    )
    .addOption(
      new Option('--health-min-attempts <n>', 'fewer attempts in the window: Healthy stays as it was')
        .env('DFN_HEALTH_MIN_ATTEMPTS')
        .default(DEFAULT_HEALTH_POLICY.minAttempts)
        .argParser(whole(1, 1_000_000, 'the least number of attempts')),
    )
    .addOption(
      new Option('--health-unhealthy-ratio <ratio>', 'Healthy turns False when more than this share failed')
        .env('DFN_HEALTH_UNHEALTHY_RATIO')
        .default(DEFAULT_HEALTH_POLICY.unhealthyRatio)
        .argParser(ratio('the unhealthy ratio')),
    )
    .addOption(
      new Option('--health-healthy-ratio <ratio>', 'and True again when at most this share failed')
        .env('DFN_HEALTH_HEALTHY_RATIO')
        .default(DEFAULT_HEALTH_POLICY.healthyRatio)
        .argParser(ratio('the healthy ratio')),
    )
    .addOption(
      new Option('--resync <ms>', 'everything is reconciled again this often')
        .default(600_000)
        .argParser(whole(1000, 86_400_000, 'the resync period')),
    )
    .addOption(
      new Option('--revision-history <n>', 'revisions kept per function besides those instances run or pin')
        .default(5)
        .argParser(whole(1, 1000, 'the revision history')),
    )
    .addOption(
      new Option('--stream-storage <storage>', 'storage of the JetStream streams the operator creates')
        .env('DFN_STREAM_STORAGE')
        .choices(['file', 'memory'])
        .default('file'),
    )
    .addOption(
      new Option('--stream-replicas <n>', 'copies of each stream in a NATS cluster (3 for a clustered NATS)')
        .env('DFN_STREAM_REPLICAS')
        .default(1)
        .argParser(whole(1, 5, 'the stream replica count')),
    )
    .addOption(
      new Option('--http-host <address>', 'address of /healthz, /readyz, /metrics').default('0.0.0.0'),
    )
    .addOption(
      new Option('--http-port <port>', 'port of /healthz, /readyz, /metrics (0 picks a free one)')
        .env('DFN_OPERATOR_HTTP_PORT')
        .default(8081)
        .argParser(whole(0, 65_535, 'the port')),
    )
    .addOption(
      new Option('--log-level <level>', 'least severe log level written')
        .env('DFN_LOG_LEVEL')
        .choices(LOG_LEVELS)
        .default('info'),
    )
    .addHelpText('after', HELP_AFTER);
  addNatsOptions(command).action(async (flags: OperatorFlags) => {
    await runCli('operator', () => runOperator(flags));
    // Explicit: a watch or socket closing late must not keep a stopped operator's pod alive.
    process.exit(process.exitCode ?? 0);
  });
}

function kubeConfig(flags: OperatorFlags): KubeConfig {
  const file = flags.kubeconfig ?? process.env.KUBECONFIG;
  // In a Pod (or one the local kubelet runs): the Pod's service-account token.
  if (!file && process.env.KUBERNETES_SERVICE_HOST) return inClusterKubeConfig();
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return reuseConnections(kc);
}

function readFlagFile(flag: string, path: string): string {
  try {
    return readFileSync(podPath(path), 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new CliUsageError(`cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

/** The credentials runners get (through the per-namespace Secret), one form at most. */
function runnerNatsAuth(flags: OperatorFlags): RunnerNatsAuth {
  const forms = [
    flags.runnerNatsCreds && '--runner-nats-creds',
    flags.runnerNatsTokenFile && '--runner-nats-token-file',
    flags.runnerNatsUser && '--runner-nats-user',
  ].filter(Boolean);
  if (forms.length > 1) throw new CliUsageError(`use only one of ${forms.join(', ')}`);
  if (Boolean(flags.runnerNatsUser) !== Boolean(flags.runnerNatsPasswordFile)) {
    throw new CliUsageError('--runner-nats-user and --runner-nats-password-file go together');
  }
  if (flags.runnerNatsCreds)
    return { kind: 'creds', creds: readFlagFile('--runner-nats-creds', flags.runnerNatsCreds) };
  if (flags.runnerNatsTokenFile) {
    return { kind: 'token', token: readFlagFile('--runner-nats-token-file', flags.runnerNatsTokenFile) };
  }
  if (flags.runnerNatsUser) {
    return {
      kind: 'user',
      user: flags.runnerNatsUser,
      password: readFlagFile('--runner-nats-password-file', flags.runnerNatsPasswordFile!),
    };
  }
  return { kind: 'none' };
}

async function runOperator(flags: OperatorFlags): Promise<number> {
  // Loaded here: `dfn --help` and the other commands need none of the operator.
  const { deliveryTracker, Operator, startOperatorHttp } = await import('../../operator/index.js');
  topology(flags.prefix);
  if (flags.renewDeadline >= flags.leaseDuration) {
    throw new CliUsageError('--renew-deadline must be shorter than --lease-duration');
  }
  if (flags.healthHealthyRatio > flags.healthUnhealthyRatio) {
    // Otherwise a ratio between the two would flip Healthy at every judgement.
    throw new CliUsageError('--health-healthy-ratio must not be above --health-unhealthy-ratio');
  }
  const log = processLogger('operator', flags.logLevel);
  const kc = kubeConfig(flags);
  const natsAuth = cliNatsAuth(flags);
  const allow = flags.allowPrivateNetwork;
  const operator = new Operator({
    kc,
    ...(flags.namespace?.length ? { namespaces: flags.namespace } : {}),
    nats: { ...natsUrlCredentials(flags.natsUrl), ...authOptions(natsAuth) },
    prefix: flags.prefix,
    streamLimits: { storage: flags.streamStorage, replicas: flags.streamReplicas },
    runner: {
      image: flags.runnerImage,
      imagePullPolicy: flags.runnerImagePullPolicy,
      natsUrl: list(flags.runnerNatsUrl ?? flags.natsUrl),
      natsAuth: runnerNatsAuth(flags),
      progressDeadlineSeconds: flags.runnerProgressDeadline,
      ...(flags.runnerResources ? { resources: flags.runnerResources } : {}),
      ...(flags.runnerStatsInterval ? { statsIntervalMs: flags.runnerStatsInterval } : {}),
    },
    ...(flags.writeKeysSecret ? { writeKeys: { ...flags.writeKeysSecret, key: flags.writeKeysKey } } : {}),
    allowPrivateNetwork: allow.includes('*') ? '*' : allow,
    ...(flags.leaderElect
      ? {
          leaderElection: {
            namespace: flags.leaseNamespace,
            name: flags.leaseName,
            identity: `${process.env.POD_NAME || hostname()}_${Math.random().toString(36).slice(2, 10)}`,
            leaseDurationMs: flags.leaseDuration,
            renewDeadlineMs: flags.renewDeadline,
            retryPeriodMs: flags.retryPeriod,
          },
        }
      : {}),
    statusIntervalMs: flags.statusInterval,
    // Runner stats and the consumers' pending counts into status, Healthy, and the backlog gauge.
    delivery: deliveryTracker({
      pollIntervalMs: flags.deliveryPollInterval,
      health: {
        windowMs: flags.healthWindow,
        minAttempts: flags.healthMinAttempts,
        unhealthyRatio: flags.healthUnhealthyRatio,
        healthyRatio: flags.healthHealthyRatio,
      },
    }),
    resyncMs: flags.resync,
    revisionHistory: flags.revisionHistory,
    log,
  });
  // Run by the local kubelet, the Pod's HTTP port is remapped and served on loopback (lib/pod-env.ts).
  const port = podHttpPort() ?? flags.httpPort;
  const host = podHttpHost() ?? flags.httpHost;
  const http = await startOperatorHttp(operator, operator.metrics.registry, host, port).catch((err) => {
    throw new Error(`cannot serve /healthz, /readyz and /metrics on ${host}:${port}: ${err.message}`);
  });
  const address = http.server.address();
  log.info(
    {
      http: typeof address === 'object' && address ? `${address.address}:${address.port}` : port,
      nats: displayServers(flags.natsUrl),
      namespaces: flags.namespace?.length ? flags.namespace : 'all',
      leaderElection: flags.leaderElect ? `${flags.leaseNamespace}/${flags.leaseName}` : 'off',
    },
    'operator started',
  );
  operator.start();
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting at once');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'stopping: finishing reconciles, releasing the lease');
      void (async () => {
        await operator.stop();
        await http.close();
        log.info('operator stopped');
        resolve(0);
      })();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
