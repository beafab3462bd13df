// The local kubelet: registers a Node, binds unscheduled Pods to it (there is no scheduler) and runs each
// Pod of the dfn image as local processes, on a machine without a container runtime. `dfn up` and tests use it.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CoreV1Api,
  type Informer,
  type KubeConfig,
  makeInformer,
  type ObjectCache,
  type V1Pod,
} from '@kubernetes/client-node';
import type { ImageMapping } from './image.js';
import { type LogsServer, startLogsServer } from './logs-server.js';
import { NodeRegistration } from './node.js';
import { type KubeletContext, PodWorker } from './pod-worker.js';
import { Sources } from './sources.js';
import { ServiceAccountTokens } from './volumes.js';

export interface KubeletOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  images: ImageMapping;
  /** What Pods get as KUBERNETES_SERVICE_HOST/PORT: the API server, on loopback. */
  apiServer: { host: string; port: number };
  /** Pod roots and logs; a temp dir (removed on stop) if unset. */
  dir?: string;
  /** Only bind and run Pods of these namespaces (several kubelets can share a control plane). */
  namespaces?: string[];
  /** First delay of the restart back-off after the immediate first restart (default 10 s, as a kubelet). */
  restartBackoffMs?: number;
  /** Serve the kubelet API's /containerLogs so `kubectl logs` works (TLS from the control plane's CA). */
  logsServer?: { cert: string; key: string; clientCa: string };
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

const RESTART_AFTER_ERROR_MS = 1_000;
const FIRST_FAILURE_DELAY_MS = 1_000;
const MAX_FAILURE_DELAY_MS = 5 * 60_000;
const TOKEN_CHECK_MS = 30_000;
/** On stop, no Pod's grace period holds the kubelet longer than this. */
const STOP_GRACE_MS = 10_000;

export class Kubelet {
  private readonly workers = new Map<string, PodWorker>();
  private informer: (Informer<V1Pod> & ObjectCache<V1Pod>) | undefined;
  private stopped = false;
  private readonly failures = new Map<string, { delayMs: number }>();
  private tokenTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly options: KubeletOptions,
    private readonly ctx: KubeletContext,
    private readonly node: NodeRegistration,
    private readonly sources: Sources,
    private readonly ownsDir: boolean,
    private readonly logs: LogsServer | undefined,
  ) {}

  static async start(options: KubeletOptions): Promise<Kubelet> {
    const kc = options.kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'dfn-kubelet-')));
    const log = options.log ?? (() => {});
    const sources = new Sources(kc, options.namespaces);
    const ctx: KubeletContext = {
      core,
      nodeName: options.nodeName,
      dir,
      images: options.images,
      sources,
      tokens: new ServiceAccountTokens(kc),
      apiServer: options.apiServer,
      baseBackoffMs: options.restartBackoffMs ?? 10_000,
      log,
    };
    let logs: LogsServer | undefined;
    let kubelet: Kubelet | undefined;
    if (options.logsServer) {
      logs = await startLogsServer(options.logsServer, (ns, pod) => kubelet?.pod(ns, pod));
    }
    const node = new NodeRegistration(kc, core, options.nodeName, logs?.port);
    kubelet = new Kubelet(options, ctx, node, sources, ownsDir, logs);
    await sources.start();
    await node.register();
    sources.onChange((kind, namespace, name) => {
      for (const w of kubelet!.workers.values())
        if (w.namespace === namespace && w.uses(kind, name)) w.refreshVolumes();
    });
    kubelet.tokenTimer = setInterval(() => {
      for (const w of kubelet!.workers.values()) w.refreshVolumes();
    }, TOKEN_CHECK_MS);
    await kubelet.watchPods();
    log('kubelet started', { node: options.nodeName, dir, namespaces: options.namespaces ?? 'all' });
    return kubelet;
  }

  get nodeName(): string {
    return this.options.nodeName;
  }

  get dir(): string {
    return this.ctx.dir;
  }

  /** The worker running a Pod, by namespace and name. */
  pod(namespace: string, name: string): PodWorker | undefined {
    for (const w of this.workers.values()) if (w.namespace === namespace && w.name === name) return w;
    return undefined;
  }

  pods(): PodWorker[] {
    return [...this.workers.values()];
  }

  /** Stops every Pod's processes (within their grace period, at most 10 s) and the heartbeat. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.tokenTimer);
    await this.informer?.stop();
    await Promise.all([...this.workers.values()].map((w) => w.terminate(false, STOP_GRACE_MS)));
    this.workers.clear();
    await this.sources.stop();
    await this.node.deregister();
    await this.logs?.close();
    if (this.ownsDir) await rm(this.ctx.dir, { recursive: true, force: true });
  }

  private async watchPods(): Promise<void> {
    const core = this.ctx.core;
    const namespaces = this.options.namespaces;
    // One namespace: watch it alone; several or all: watch every Pod and filter.
    const only = namespaces?.length === 1 ? namespaces[0] : undefined;
    const informer = makeInformer<V1Pod>(
      this.options.kubeConfig,
      only ? `/api/v1/namespaces/${only}/pods` : '/api/v1/pods',
      () => (only ? core.listNamespacedPod({ namespace: only }) : core.listPodForAllNamespaces()),
    );
    informer.on('add', (pod) => this.observe(pod));
    informer.on('update', (pod) => this.observe(pod));
    informer.on('delete', (pod) => {
      const worker = this.workers.get(pod.metadata!.uid!);
      if (!worker) return;
      // Gone from the API (a forced delete): stop what runs, nothing left to delete.
      void worker.terminate(false).then(() => this.workers.delete(pod.metadata!.uid!));
    });
    informer.on('error', (err) => {
      this.ctx.log('pod watch failed; restarting it', { err: String(err) });
      if (!this.stopped)
        setTimeout(() => !this.stopped && void informer.start().catch(() => {}), RESTART_AFTER_ERROR_MS);
    });
    this.informer = informer;
    await informer.start();
  }

  private inScope(pod: V1Pod): boolean {
    const ns = pod.metadata?.namespace ?? '';
    return !this.options.namespaces || this.options.namespaces.includes(ns);
  }

  private observe(pod: V1Pod): void {
    if (this.stopped || !this.inScope(pod)) return;
    const uid = pod.metadata!.uid!;
    const existing = this.workers.get(uid);
    if (existing) {
      existing.update(pod);
      return;
    }
    if (!pod.spec?.nodeName) {
      if (!pod.metadata?.deletionTimestamp) void this.bind(pod);
      return;
    }
    if (pod.spec.nodeName !== this.nodeName) return;
    if (pod.metadata?.deletionTimestamp) {
      // Deleted while no worker of this kubelet ran it: nothing runs here, let it go.
      void this.ctx.core
        .deleteNamespacedPod({
          name: pod.metadata.name!,
          namespace: pod.metadata.namespace!,
          gracePeriodSeconds: 0,
          body: { gracePeriodSeconds: 0, preconditions: { uid } },
        })
        .catch(() => {});
      return;
    }
    // A Pod that ended before this kubelet started stays as it ended.
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    const worker = new PodWorker(pod, {
      ...this.ctx,
      failureDelayMs: () => this.failureDelay(pod),
      forget: (id) => this.workers.delete(id),
    });
    this.workers.set(uid, worker);
    worker
      .start()
      .catch((err) => this.ctx.log('pod worker failed', { pod: pod.metadata?.name, err: String(err) }));
  }

  /** The scheduler's part: what asks for no particular scheduler, and fits this node's labels, is bound here. */
  private async bind(pod: V1Pod): Promise<void> {
    const scheduler = pod.spec?.schedulerName;
    if (scheduler && scheduler !== 'default-scheduler') return;
    const labels = this.node.labels;
    const selector = pod.spec?.nodeSelector ?? {};
    if (Object.entries(selector).some(([k, v]) => labels[k] !== v)) return;
    try {
      await this.ctx.core.createNamespacedPodBinding({
        name: pod.metadata!.name!,
        namespace: pod.metadata!.namespace!,
        body: {
          apiVersion: 'v1',
          kind: 'Binding',
          metadata: { name: pod.metadata!.name!, uid: pod.metadata!.uid! },
          target: { apiVersion: 'v1', kind: 'Node', name: this.nodeName },
        },
      });
    } catch (err) {
      // 409: already bound (by us, on an earlier event): the update with nodeName follows.
      if ((err as { code?: number }).code !== 409)
        this.ctx.log('bind failed', { pod: pod.metadata?.name, err: String(err) });
    }
  }

  /**
   * How long to wait before failing a Pod that cannot run here. A ReplicaSet replaces each failed Pod at
   * once, so without this an unknown image in a Deployment would be a busy loop; each further failure of
   * the same owner doubles the wait, up to 5 minutes.
   */
  private failureDelay(pod: V1Pod): number {
    const owner = pod.metadata?.ownerReferences?.find((o) => o.controller)?.uid;
    if (!owner) return 0;
    const entry = this.failures.get(owner);
    if (!entry) {
      this.failures.set(owner, { delayMs: FIRST_FAILURE_DELAY_MS });
      return 0;
    }
    const delay = entry.delayMs;
    entry.delayMs = Math.min(MAX_FAILURE_DELAY_MS, entry.delayMs * 2);
    return delay;
  }
}
