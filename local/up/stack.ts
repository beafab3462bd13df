// `dfn up`: the whole product on this machine. nats-server (JetStream on file storage), the control plane
// (CRDs applied before kube-controller-manager), the local kubelet, then the chart installed with helm, so
// the operator and the gateway run as the chart's Pods and runners as the operator's Deployments.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AppsV1Api, type V1Deployment } from '@kubernetes/client-node';
import { ControlPlane, dfnCrds } from '../control-plane/control-plane.js';
import { Kubelet } from '../kubelet/kubelet.js';
import { cachedTool, helmBinary, kubeBinary, repoRoot } from '../tools.js';
import { chartValuesYaml, LOCAL_IMAGE_REPOSITORY } from './chart-values.js';
import { dfnCommand } from './dfn-command.js';
import { installChart, recoverInterruptedRelease } from './helm.js';
import { type LocalNats, startNats } from './nats-server.js';
import { assertPortsFree, type UpPorts } from './ports.js';
import {
  type RunningStack,
  readRunningStack,
  removeRunningStack,
  writeRunningStack,
} from './running-stack.js';
import { ServiceForwarder } from './service-forwarder.js';

export interface UpOptions {
  ports: UpPorts;
  /** Kept between runs (cluster, streams, write key); a temp directory removed on stop if unset. */
  stateDir?: string;
  /** The chart to install (default: charts/dfn of this dfn). */
  chart?: string;
  /** The source the printed write key sends to. */
  source: string;
  /** The version the image tag names (package.json's). */
  version: string;
  /** One line per step. */
  progress: (line: string) => void;
  /** How long each step may take (default 5 min: a loaded machine starts Pods slowly). */
  stepTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Aborts the start (Ctrl-C while starting): what started is stopped, start() throws StartAborted. */
  signal?: AbortSignal;
}

export const RELEASE = 'dfn';
export const RELEASE_NAMESPACE = 'dfn-system';
const NODE_NAME = 'dfn-local';
const GATEWAY_SELECTOR = 'app.kubernetes.io/component=gateway';

export class UpError extends Error {
  override readonly name = 'UpError';
  readonly code = 'DFN_UP';
}

export class StartAborted extends Error {
  override readonly name = 'StartAborted';
  readonly code = 'DFN_UP_ABORTED';
  constructor() {
    super('interrupted while starting');
  }
}

export class LocalStack {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly info: RunningStack,
    private readonly parts: {
      nats?: LocalNats;
      controlPlane?: ControlPlane;
      kubelet?: Kubelet;
      forwarder?: ServiceForwarder;
    },
    private readonly ownsStateDir: boolean,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Starts every part in order; on any failure, stops what had started and throws. */
  static async start(options: UpOptions): Promise<LocalStack> {
    const env = options.env ?? process.env;
    const signal = options.signal;
    const step = (line: string) => {
      if (signal?.aborted) throw new StartAborted();
      options.progress(line);
    };
    const log = options.progress;
    const timeoutMs = options.stepTimeoutMs ?? 300_000;
    const running = readRunningStack(env);
    if (running) {
      throw new UpError(
        `dfn up is already running (pid ${running.pid}, state ${running.stateDir}): stop it first (Ctrl-C there)`,
      );
    }
    const chart = resolve(options.chart ?? join(repoRoot(), 'charts', 'dfn'));
    if (!existsSync(join(chart, 'Chart.yaml'))) throw new UpError(`no Helm chart at ${chart} (--chart)`);
    // Every binary before anything starts: a missing one is one message saying how to get it.
    cachedTool('nats-server', 'NATS_SERVER_VERSION', env);
    for (const b of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl'] as const)
      kubeBinary(b, env);
    helmBinary(env);
    await assertPortsFree(options.ports);

    const ownsStateDir = options.stateDir === undefined;
    const stateDir = resolve(options.stateDir ?? (await mkdtemp(join(tmpdir(), 'dfn-up-'))));
    await mkdir(join(stateDir, 'logs'), { recursive: true });
    const parts: LocalStack['parts'] = {};
    const stack = (info: RunningStack) => new LocalStack(info, parts, ownsStateDir, env);
    try {
      const writeKey = await keptWriteKey(stateDir);

      step(`nats-server (JetStream, file storage in ${join(stateDir, 'nats')})`);
      parts.nats = await startNats({
        port: options.ports.nats,
        storeDir: join(stateDir, 'nats'),
        logFile: join(stateDir, 'logs', 'nats-server.log'),
        timeoutMs,
      });
      log(`  ready on ${parts.nats.url}`);

      step('Kubernetes control plane: etcd, kube-apiserver, the dfn CRDs, kube-controller-manager');
      parts.controlPlane = await ControlPlane.start({
        dir: join(stateDir, 'cluster'),
        crds: await dfnCrds(),
        ports: {
          apiserver: options.ports.apiserver,
          etcd: options.ports.etcd,
          etcdPeer: options.ports.etcdPeer,
          controllerManager: options.ports.controllerManager,
        },
        log: (line) => log(`  ${line}`),
        readyTimeoutMs: timeoutMs,
        env,
      });
      const cp = parts.controlPlane;

      step(`local kubelet: node ${NODE_NAME}, runs the Pods of ${LOCAL_IMAGE_REPOSITORY} as processes`);
      parts.kubelet = await Kubelet.start({
        kubeConfig: cp.kubeConfig(),
        nodeName: NODE_NAME,
        images: { repositories: [LOCAL_IMAGE_REPOSITORY], dfn: dfnCommand() },
        apiServer: { host: '127.0.0.1', port: cp.endpoints.apiserverPort },
        dir: join(stateDir, 'kubelet'),
        logsServer: { cert: cp.certs.kubeletCert, key: cp.certs.kubeletKey, clientCa: cp.certs.caCert },
      });

      step(`helm upgrade --install ${RELEASE} ${chart} (namespace ${RELEASE_NAMESPACE})`);
      const valuesFile = join(stateDir, 'values.yaml');
      await writeFile(
        valuesFile,
        chartValuesYaml({
          imageTag: options.version,
          natsUrl: parts.nats.url,
          writeKey,
          source: options.source,
        }),
      );
      const helmContext = { kubeconfig: cp.kubeconfigPath, home: join(stateDir, 'helm') };
      const release = { name: RELEASE, namespace: RELEASE_NAMESPACE };
      const recovered = await recoverInterruptedRelease(helmContext, release);
      if (recovered) log(`  ${recovered}`);
      await installChart(helmContext, { ...release, chart, valuesFile });
      await waitForDeployments(cp, log, timeoutMs, signal);

      parts.forwarder = await ServiceForwarder.start({
        kubeConfig: cp.kubeConfig(),
        namespace: RELEASE_NAMESPACE,
        serviceSelector: GATEWAY_SELECTOR,
        listenPort: options.ports.gateway,
      }).catch((err) => {
        throw new UpError(
          `cannot listen on 127.0.0.1:${options.ports.gateway} for the gateway: ${err.message}`,
        );
      });
      const gatewayUrl = `http://127.0.0.1:${options.ports.gateway}`;
      await waitForGateway(gatewayUrl, timeoutMs, signal);
      log(`  gateway answering on ${gatewayUrl}`);

      const info: RunningStack = {
        pid: process.pid,
        natsUrl: parts.nats.url,
        kubeconfig: cp.kubeconfigPath,
        gatewayUrl,
        writeKey,
        source: options.source,
        stateDir,
        release: RELEASE,
        namespace: RELEASE_NAMESPACE,
        startedAt: new Date().toISOString(),
      };
      if (signal?.aborted) throw new StartAborted();
      writeRunningStack(info, env);
      return stack(info);
    } catch (err) {
      await stack({ stateDir } as RunningStack).stop();
      throw err;
    }
  }

  /** Stops the gateway forward, the kubelet (and so every Pod), the control plane, then nats-server. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.info.pid) removeRunningStack(this.info.pid, this.env);
      const { forwarder, kubelet, controlPlane, nats } = this.parts;
      await forwarder?.close();
      await kubelet?.stop();
      await controlPlane?.stop();
      await nats?.process.stop(10_000);
      if (this.ownsStateDir) await rm(this.info.stateDir, { recursive: true, force: true });
    })();
    return this.stopping;
  }
}

/** The state directory's write key, made on its first run. */
async function keptWriteKey(stateDir: string): Promise<string> {
  const file = join(stateDir, 'write-key');
  const kept = await readFile(file, 'utf8').catch(() => '');
  if (kept.trim()) return kept.trim();
  const key = `wk_local_${randomBytes(12).toString('hex')}`;
  await writeFile(file, `${key}\n`, { mode: 0o600 });
  return key;
}

const available = (d: V1Deployment) =>
  (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) &&
  (d.status?.availableReplicas ?? 0) >= (d.spec?.replicas ?? 1) &&
  (d.status?.updatedReplicas ?? 0) >= (d.spec?.replicas ?? 1);

/** Until every Deployment of the release is available, printing each change of what is ready. */
async function waitForDeployments(
  cp: ControlPlane,
  log: (line: string) => void,
  timeoutMs: number,
  signal: AbortSignal | undefined,
) {
  const apps = cp.kubeConfig().makeApiClient(AppsV1Api);
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const list = await apps
      .listNamespacedDeployment({
        namespace: RELEASE_NAMESPACE,
        labelSelector: `app.kubernetes.io/instance=${RELEASE}`,
      })
      .catch(() => undefined);
    const items = list?.items ?? [];
    const line = items
      .map((d) => `${d.metadata!.name} ${d.status?.availableReplicas ?? 0}/${d.spec?.replicas ?? 1}`)
      .join(', ');
    if (line && line !== last) log(`  ${line} available`);
    last = line;
    if (items.length > 0 && items.every(available)) return;
    if (signal?.aborted) throw new StartAborted();
    if (Date.now() > deadline) {
      throw new UpError(
        `the chart's Deployments were not available within ${timeoutMs / 1000} s (${line || 'none found'}): ` +
          `see \`kubectl -n ${RELEASE_NAMESPACE} get pods\` and \`kubectl -n ${RELEASE_NAMESPACE} logs\``,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function waitForGateway(url: string, timeoutMs: number, signal: AbortSignal | undefined) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5_000) }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (signal?.aborted) throw new StartAborted();
    if (Date.now() > deadline) throw new UpError(`the gateway did not answer on ${url}/readyz in time`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
