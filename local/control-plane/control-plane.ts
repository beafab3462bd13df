// A real Kubernetes control plane on loopback, from the binaries scripts/kube-tools.sh builds: etcd,
// kube-apiserver (RBAC, service accounts) and kube-controller-manager, as envtest starts them.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiextensionsV1Api,
  KubeConfig,
  loadAllYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { freePort } from '../../lib/free-port.js';
import { reuseConnections } from '../../lib/kube-connections.js';
import { TetheredProcess } from '../process.js';
import { type KubeBinary, kubeBinary, repoRoot } from '../tools.js';
import { adminTls, type ControlPlaneCerts, createCerts, existingCerts } from './certs.js';

export interface ControlPlaneOptions {
  /** Where certificates, etcd data, logs and the kubeconfig go; a fresh temp dir (removed on stop) if unset. */
  dir?: string;
  /** CustomResourceDefinitions created (and Established) before kube-controller-manager starts. */
  crds?: V1CustomResourceDefinition[];
  /** Progress lines ("etcd ready on …"); silent if unset. */
  log?: (line: string) => void;
  /** How long each component may take to become ready (default 60 s: the machine may be loaded). */
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * Fixed loopback ports (e.g. `dfn up`'s 6443 for the API server); each one unset is a free port. A fixed
   * port that is taken fails the start (no retry with another: the user asked for that one).
   */
  ports?: ControlPlanePorts;
}

export interface ControlPlanePorts {
  apiserver?: number;
  etcd?: number;
  etcdPeer?: number;
  controllerManager?: number;
}

export interface ControlPlaneEndpoints {
  /** https://127.0.0.1:<port> */
  server: string;
  apiserverPort: number;
  etcdPort: number;
  etcdPeerPort: number;
  controllerManagerPort: number;
}

export class ControlPlaneError extends Error {
  override readonly name = 'ControlPlaneError';
  readonly code = 'DFN_CONTROL_PLANE';
}

interface Component {
  name: string;
  process: TetheredProcess;
  logFile: string;
}

const POLL_MS = 100;
const ADDRESS_IN_USE = /address already in use|bind: address/i;

export class ControlPlane {
  private stopped = false;

  private constructor(
    readonly dir: string,
    readonly certs: ControlPlaneCerts,
    readonly endpoints: ControlPlaneEndpoints,
    /** An admin (system:masters) kubeconfig. */
    readonly kubeconfigPath: string,
    private readonly components: Component[],
    private readonly ownsDir: boolean,
  ) {}

  /** Starts etcd, kube-apiserver, the CRDs, then kube-controller-manager, each waited for. */
  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const env = options.env ?? process.env;
    // Before anything else, so that a missing binary fails at once with how to get it.
    const binaries = Object.fromEntries(
      (['etcd', 'kube-apiserver', 'kube-controller-manager'] as const).map((b) => [b, kubeBinary(b, env)]),
    ) as Record<KubeBinary, string>;
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'dfn-control-plane-')));
    const log = options.log ?? (() => {});
    const timeoutMs = options.readyTimeoutMs ?? 60_000;
    const components: Component[] = [];
    try {
      const certDir = join(dir, 'pki');
      await mkdir(certDir, { recursive: true });
      await mkdir(join(dir, 'logs'), { recursive: true });
      // A kept directory keeps its certificates: kubeconfigs and tokens issued by an earlier run stay valid.
      const certs = (await existingCerts(certDir)) ?? (await createCerts(certDir));
      const ports = options.ports ?? {};
      const pick = (fixed: number | undefined) => (fixed !== undefined ? fixed : freePort());
      const tls = await adminTls(certs);

      const etcd = await startWithFreePorts(
        log,
        ports.etcd === undefined && ports.etcdPeer === undefined,
        async () => {
          const [client, peer] = [await pick(ports.etcd), await pick(ports.etcdPeer)];
          const c = spawnComponent(dir, 'etcd', binaries.etcd, env, [
            `--data-dir=${join(dir, 'etcd')}`,
            '--name=dfn',
            `--listen-client-urls=http://127.0.0.1:${client}`,
            `--advertise-client-urls=http://127.0.0.1:${client}`,
            `--listen-peer-urls=http://127.0.0.1:${peer}`,
            `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
            `--initial-cluster=dfn=http://127.0.0.1:${peer}`,
            // A throwaway store: fsync buys nothing and costs a loaded machine seconds per write.
            '--unsafe-no-fsync=true',
            '--quota-backend-bytes=2147483648',
            '--log-level=warn',
          ]);
          await waitReady(c, `http://127.0.0.1:${client}/health`, undefined, timeoutMs);
          return { component: c, ports: { client, peer } };
        },
      );
      components.push(etcd.component);
      log(`etcd ready on 127.0.0.1:${etcd.ports.client}`);

      const apiserver = await startWithFreePorts(log, ports.apiserver === undefined, async () => {
        const port = await pick(ports.apiserver);
        const c = spawnComponent(dir, 'kube-apiserver', binaries['kube-apiserver'], env, [
          `--etcd-servers=http://127.0.0.1:${etcd.ports.client}`,
          '--bind-address=127.0.0.1',
          `--secure-port=${port}`,
          '--advertise-address=127.0.0.1',
          // A loopback advertise address is refused unless no endpoint reconciler runs.
          '--endpoint-reconciler-type=none',
          `--cert-dir=${certDir}`,
          `--tls-cert-file=${certs.servingCert}`,
          `--tls-private-key-file=${certs.servingKey}`,
          `--client-ca-file=${certs.caCert}`,
          '--authorization-mode=RBAC',
          `--service-account-issuer=https://127.0.0.1:${port}/`,
          `--service-account-key-file=${certs.serviceAccountPub}`,
          `--service-account-signing-key-file=${certs.serviceAccountKey}`,
          '--service-cluster-ip-range=10.0.0.0/24',
          '--allow-privileged=true',
          // `kubectl logs` goes through the local kubelet's API (local/kubelet/logs-server.ts), on loopback.
          `--kubelet-client-certificate=${certs.kubeletClientCert}`,
          `--kubelet-client-key=${certs.kubeletClientKey}`,
          `--kubelet-certificate-authority=${certs.caCert}`,
          '--kubelet-preferred-address-types=InternalIP',
        ]);
        await waitReady(c, `https://127.0.0.1:${port}/readyz`, tls, timeoutMs);
        return { component: c, ports: { port } };
      });
      components.push(apiserver.component);
      const server = `https://127.0.0.1:${apiserver.ports.port}`;
      log(`kube-apiserver ready at ${server}`);

      const kubeconfigPath = join(dir, 'kubeconfig');
      await writeFile(kubeconfigPath, adminKubeconfig(server, tls), { mode: 0o600 });

      // Before kube-controller-manager: its garbage collector only discovers types that exist when it
      // starts (later ones after a 30 s resync), so dependents of our kinds would linger that long.
      if (options.crds?.length) {
        await applyCrds(kubeConfigFrom(kubeconfigPath), options.crds, timeoutMs);
        log(`${options.crds.length} CRDs established`);
      }

      const kcm = await startWithFreePorts(log, ports.controllerManager === undefined, async () => {
        const port = await pick(ports.controllerManager);
        const flexDir = join(dir, 'flexvolume');
        await mkdir(flexDir, { recursive: true });
        const c = spawnComponent(dir, 'kube-controller-manager', binaries['kube-controller-manager'], env, [
          `--kubeconfig=${kubeconfigPath}`,
          `--authentication-kubeconfig=${kubeconfigPath}`,
          `--authorization-kubeconfig=${kubeconfigPath}`,
          '--authentication-skip-lookup=true',
          '--bind-address=127.0.0.1',
          `--secure-port=${port}`,
          `--service-account-private-key-file=${certs.serviceAccountKey}`,
          `--root-ca-file=${certs.caCert}`,
          '--use-service-account-credentials=false',
          '--leader-elect=false',
          // Otherwise it creates /usr/libexec/kubernetes/kubelet-plugins/... on the machine.
          `--flex-volume-plugin-dir=${flexDir}`,
          '--controllers=*',
          // Its client's default (20 requests/s, bursts of 30) turns Deployments into ReplicaSets, Pods and
          // ready counts at about four Deployments a second (some five writes each): 500 instances waited
          // minutes for their Pods while the operator had long applied everything (docs/operator.md). Raised,
          // the apiserver and etcd set the pace, as in a cluster, not a client-side limit of this one.
          '--kube-api-qps=200',
          '--kube-api-burst=400',
          // Likewise its workers (5 Deployments and 5 ReplicaSets synced at a time by default): with requests
          // no longer each paying a TLS handshake, 500 new Deployments waited for them, not for the apiserver.
          '--concurrent-deployment-syncs=25',
          '--concurrent-replicaset-syncs=25',
        ]);
        await waitReady(c, `https://127.0.0.1:${port}/healthz`, { ...tls, insecure: true }, timeoutMs);
        return { component: c, ports: { port } };
      });
      components.push(kcm.component);
      log(`kube-controller-manager ready on 127.0.0.1:${kcm.ports.port}`);

      return new ControlPlane(
        dir,
        certs,
        {
          server,
          apiserverPort: apiserver.ports.port,
          etcdPort: etcd.ports.client,
          etcdPeerPort: etcd.ports.peer,
          controllerManagerPort: kcm.ports.port,
        },
        kubeconfigPath,
        components,
        ownsDir,
      );
    } catch (err) {
      await stopComponents(components);
      if (ownsDir) await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** A client-node config for the admin user. */
  kubeConfig(): KubeConfig {
    return kubeConfigFrom(this.kubeconfigPath);
  }

  /** The pids of etcd, kube-apiserver and kube-controller-manager. */
  async pids(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const c of this.components) out[c.name] = await c.process.pid;
    return out;
  }

  async logs(name: KubeBinary): Promise<string> {
    const c = this.components.find((x) => x.name === name);
    return c ? readFile(c.logFile, 'utf8') : '';
  }

  /** Stops kube-controller-manager, kube-apiserver and etcd in that order; removes the temp dir. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await stopComponents(this.components);
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** In reverse start order, so nothing loses what it depends on while it shuts down. */
async function stopComponents(components: Component[]): Promise<void> {
  for (const c of [...components].reverse()) await c.process.stop(5_000);
}

function spawnComponent(
  dir: string,
  name: KubeBinary,
  binary: string,
  env: NodeJS.ProcessEnv,
  args: string[],
): Component {
  const logFile = join(dir, 'logs', `${name}.log`);
  const process = new TetheredProcess(binary, args, {
    logFile,
    env: env as Record<string, string>,
  });
  return { name, process, logFile };
}

/**
 * Runs `attempt` up to three times while the component dies of a port another process took meanwhile
 * (`retry`: its ports are free ones; a fixed port that is taken fails at once, saying so).
 */
async function startWithFreePorts<T extends { component: Component }>(
  log: (line: string) => void,
  retry: boolean,
  attempt: () => Promise<T>,
): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      const e = err as ControlPlaneError & { component?: Component };
      const logText = e.component ? await readFile(e.component.logFile, 'utf8').catch(() => '') : '';
      if (ADDRESS_IN_USE.test(logText)) {
        if (!retry) {
          throw new ControlPlaneError(
            `${e.component?.name}: its port is already in use (log ${e.component?.logFile})`,
          );
        }
        if (i < 3) {
          log(`${e.component?.name}: a port was taken meanwhile; retrying with others`);
          continue;
        }
      }
      throw err;
    }
  }
}

interface ProbeTls {
  ca: string;
  cert: string;
  key: string;
  /** Skip server verification (kube-controller-manager serves a self-signed certificate). */
  insecure?: boolean;
}

function probe(url: string, tls: ProbeTls | undefined): Promise<number> {
  if (!tls) {
    return fetch(url, { signal: AbortSignal.timeout(5_000) }).then(
      (r) => r.status,
      () => 0,
    );
  }
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: !tls.insecure,
        timeout: 5_000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Polls `url` until it answers 200; fails early (with the log's tail) if the process exits. */
async function waitReady(c: Component, url: string, tls: ProbeTls | undefined, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  c.process.exited.then(() => (exited = true));
  for (;;) {
    if (exited || Date.now() > deadline) {
      await c.process.stop(2_000);
      const tail = (await readFile(c.logFile, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
      const err = new ControlPlaneError(
        `${c.name} ${exited ? 'exited before it was ready' : `was not ready within ${timeoutMs} ms`} ` +
          `(log ${c.logFile}):\n${tail}`,
      );
      throw Object.assign(err, { component: c });
    }
    if ((await probe(url, tls)) === 200) return;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function adminKubeconfig(server: string, tls: { ca: string; cert: string; key: string }): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'dfn-local', cluster: { server, 'certificate-authority-data': b64(tls.ca) } }],
    users: [
      {
        name: 'admin',
        user: { 'client-certificate-data': b64(tls.cert), 'client-key-data': b64(tls.key) },
      },
    ],
    contexts: [{ name: 'dfn-local', context: { cluster: 'dfn-local', user: 'admin' } }],
    'current-context': 'dfn-local',
  });
}

export function kubeConfigFrom(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return reuseConnections(kc);
}

async function applyCrds(kc: KubeConfig, crds: V1CustomResourceDefinition[], timeoutMs: number) {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  // Created, or replaced when a kept etcd already has them (a restart of `dfn up --state-dir`).
  await Promise.all(
    crds.map(async (body) => {
      try {
        await api.createCustomResourceDefinition({ body });
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err;
        const name = body.metadata!.name!;
        const current = await api.readCustomResourceDefinition({ name });
        await api.replaceCustomResourceDefinition({
          name,
          body: {
            ...body,
            metadata: { ...body.metadata, resourceVersion: current.metadata!.resourceVersion! },
          },
        });
      }
    }),
  );
  const deadline = Date.now() + timeoutMs;
  for (const crd of crds) {
    const name = crd.metadata!.name!;
    for (;;) {
      const current = await api.readCustomResourceDefinition({ name });
      if (current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new ControlPlaneError(`CRD ${name} was not Established in time`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

/** The CRDs generated into `crds/` (the files the chart's crds/ copies), for `crds` of start(). */
export async function dfnCrds(dir = join(repoRoot(), 'crds')): Promise<V1CustomResourceDefinition[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
  return (await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).flatMap(
    (t) => loadAllYaml(t) as V1CustomResourceDefinition[],
  );
}
