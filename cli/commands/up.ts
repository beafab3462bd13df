// `dfn up`: the whole stack on this machine in the foreground (local/up/), with a line per step, what to
// export and where to send events once it is ready, and a clean stop of every process on Ctrl-C.

import { dirname } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { dfnVersion } from '../../lib/version.js';
import { kubeBinary } from '../../local/tools.js';
import { DEFAULT_PORTS, PORT_FLAGS, type UpPorts } from '../../local/up/ports.js';
import { runningStackFile } from '../../local/up/running-stack.js';
import { LocalStack, RELEASE, RELEASE_NAMESPACE, StartAborted } from '../../local/up/stack.js';

interface UpFlags extends Record<string, unknown> {
  stateDir?: string;
  source: string;
  chart?: string;
  timeout: number;
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65_535)
    throw new InvalidArgumentError('must be a port from 1 to 65535.');
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 10)
    throw new InvalidArgumentError('must be a whole number of seconds, at least 10.');
  return n;
}

function sourceName(value: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(value)) throw new InvalidArgumentError('letters, digits, - and _ only.');
  return value;
}

const PORT_HELP: Record<keyof UpPorts, string> = {
  gateway: "the gateway's Segment HTTP API (forwarded to the gateway Pods)",
  nats: 'nats-server (JetStream)',
  apiserver: 'kube-apiserver (HTTPS)',
  etcd: 'etcd clients',
  etcdPeer: 'etcd peers',
  controllerManager: "kube-controller-manager's health endpoint",
};

const HELP_AFTER = `
What it runs, on 127.0.0.1 only: nats-server with JetStream (file storage in the state
directory), a Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager; the dfn
CRDs applied first), the local kubelet (Pods of the dfn image run as processes of this dfn),
and the chart (charts/dfn) installed with helm as release "${RELEASE}" in namespace
"${RELEASE_NAMESPACE}": the operator and the gateway run as the chart's Pods, runners as the
operator's Deployments. Instances in every namespace may reach private networks (so a
destination on this machine works). Nothing else is applied: your functions are yours to apply.

When it is ready it prints the KUBECONFIG to export, the gateway URL and a write key (source
"web" unless --source). \`dfn deliveries\` and \`dfn replay\` find its NATS without flags
(the running stack is recorded in ${runningStackFile().replace(process.env.HOME ?? '\0', '~')}; DFN_HOME moves it).

Without --state-dir everything lives in a temporary directory removed on exit. With it, the
cluster (etcd), the streams, the write key and the logs are kept: the next \`dfn up
--state-dir\` with the same directory finds your functions, instances and undelivered events.

Ctrl-C (or SIGTERM) stops everything in order: the Pods (runners finish what they hold), the
control plane, nats-server. A second Ctrl-C exits at once; no process outlives dfn up, even
then. Needs \`npm run setup\` (the binaries) first.

Exit status: 0 stopped by a signal after a clean stop, 1 a part failed to start, 2 usage error.

Examples:
  dfn up
  dfn up --state-dir ~/.dfn/state
  dfn up --gateway-port 18080 --nats-port 14222 --apiserver-port 16443`;

export function registerUpCommand(program: Command): void {
  const command = program
    .command('up')
    .summary('run the whole stack on this machine: Kubernetes, NATS, the chart')
    .description(
      'Run dfn on this machine: a local Kubernetes control plane and kubelet, nats-server, and the dfn chart ' +
        '(operator, gateway) installed with helm; then `kubectl apply` functions and send events.',
    )
    .option('--state-dir <dir>', 'keep the cluster, the streams and the write key here between runs')
    .addOption(
      new Option('--source <name>', 'the source the printed write key sends to')
        .default('web')
        .argParser(sourceName),
    )
    .option('--chart <dir>', "the chart to install (default: this dfn's charts/dfn)")
    .addOption(
      new Option('--timeout <seconds>', 'how long each step may take').default(300).argParser(seconds),
    );
  for (const key of Object.keys(DEFAULT_PORTS) as (keyof UpPorts)[]) {
    command.addOption(
      new Option(`${PORT_FLAGS[key]} <port>`, `port of ${PORT_HELP[key]}`)
        .default(DEFAULT_PORTS[key])
        .argParser(port),
    );
  }
  command.addHelpText('after', HELP_AFTER).action(async (flags: UpFlags) => {
    process.exitCode = await up(flags);
    // Explicit: a watch or socket closing late must not keep a stopped stack's process alive.
    process.exit(process.exitCode);
  });
}

async function up(flags: UpFlags): Promise<number> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  // commander names each option's value after its flag: --gateway-port → gatewayPort.
  const attribute = (flag: string) =>
    flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const ports = Object.fromEntries(
    (Object.keys(DEFAULT_PORTS) as (keyof UpPorts)[]).map((k) => [
      k,
      flags[attribute(PORT_FLAGS[k])] as number,
    ]),
  ) as unknown as UpPorts;
  let stack: LocalStack | undefined;
  let signalled = false;
  const aborter = new AbortController();
  let wake = () => {};
  const stopRequested = new Promise<void>((resolve) => (wake = resolve));
  const onSignal = () => {
    if (signalled) {
      process.stderr.write('dfn up: second signal: exiting now (every process is tethered to this one)\n');
      process.exit(130);
    }
    signalled = true;
    say(stack ? '\nStopping…' : '\nInterrupted: stopping what has started…');
    aborter.abort();
    wake();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    say(`dfn up ${dfnVersion()}`);
    let step = 0;
    stack = await LocalStack.start({
      ports,
      ...(flags.stateDir ? { stateDir: flags.stateDir } : {}),
      ...(flags.chart ? { chart: flags.chart } : {}),
      source: flags.source,
      version: dfnVersion(),
      stepTimeoutMs: flags.timeout * 1000,
      progress: (line) => say(line.startsWith(' ') ? line : `==> [${++step}] ${line}`),
      signal: aborter.signal,
    });
  } catch (err) {
    if (err instanceof StartAborted) {
      say('Stopped.');
      return 0;
    }
    process.stderr.write(`dfn up: ${(err as Error).message}\n`);
    return 1;
  }
  const info = stack.info;
  const kubectlDir = (() => {
    try {
      return dirname(kubeBinary('kubectl'));
    } catch {
      return undefined;
    }
  })();
  say(`
dfn is up. In another terminal:

  export KUBECONFIG=${info.kubeconfig}${kubectlDir ? `\n  export PATH=${kubectlDir}:$PATH   # the kubectl built for this cluster` : ''}

  Gateway    ${info.gatewayUrl}   (Segment HTTP Tracking API)
  Write key  ${info.writeKey}   (source "${info.source}")
  NATS       ${info.natsUrl}   (dfn deliveries / dfn replay find it by themselves)

Private networks are allowed in every namespace: a FunctionInstance with
spec.network.allowPrivateNetwork: true may reach destinations on this machine.

Try it:
  kubectl apply -f examples/webhook/
  curl -u ${info.writeKey}: -H 'content-type: application/json' \\
    -d '{"userId":"u1","event":"Signed Up"}' ${info.gatewayUrl}/v1/track
  kubectl get destfn,fi

State: ${info.stateDir}${flags.stateDir ? ' (kept)' : ' (removed on exit; --state-dir keeps it)'}. Ctrl-C stops everything.`);
  await stopRequested;
  await stack.stop();
  say('Stopped.');
  return 0;
}
