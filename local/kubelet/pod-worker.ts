// One Pod bound to this node, from start to removal: image check, private root with its volumes, remapped
// ports, init then main containers, status written like a kubelet's, termination with the grace period.

import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Container,
  type V1Pod,
} from '@kubernetes/client-node';
import { freePort } from '../../lib/free-port.js';
import type { ExitStatus } from '../process.js';
import { type ContainerHooks, ContainerRun } from './container.js';
import { LOOPBACK } from './downward.js';
import { containerEnv, expand } from './env.js';
import { KubeletError } from './errors.js';
import { commandFor, type ImageMapping, isDfnImage } from './image.js';
import type { Sources } from './sources.js';
import { inside, mount, type Payload, type ServiceAccountTokens, volumePayload } from './volumes.js';

/** Annotation on each Pod: the loopback port each declared container port was given. */
export const LOCAL_PORTS_ANNOTATION = 'dfn.dev/local-ports';

export interface PortMapping {
  name?: string;
  containerPort: number;
  hostPort: number;
}

export interface KubeletContext {
  core: CoreV1Api;
  nodeName: string;
  /** The kubelet's directory: pods/<uid>/root (each Pod's root) and logs/. */
  dir: string;
  images: ImageMapping;
  sources: Sources;
  tokens: ServiceAccountTokens;
  apiServer: { host: string; port: number };
  baseBackoffMs: number;
  log(msg: string, fields?: Record<string, unknown>): void;
  /** How long to hold a Pod that cannot run before failing it (bounds a ReplicaSet's replacements). */
  failureDelayMs?: () => number;
  /** The worker is done with its Pod (terminated, object deleted). */
  forget?: (uid: string) => void;
}

const merge = () => setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const STATUS_DEBOUNCE_MS = 50;

type Phase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export class PodWorker {
  readonly uid: string;
  readonly podDir: string;
  readonly root: string;
  readonly logDir: string;
  private readonly initRuns: ContainerRun[] = [];
  private readonly runs: ContainerRun[] = [];
  private ports = new Map<string, PortMapping[]>();
  private httpPorts = new Map<string, number>();
  private phase: Phase = 'Pending';
  private reason: { reason: string; message: string } | undefined;
  private initialized = false;
  private startTime = new Date();
  private lastStatus = '';
  private statusTimer: NodeJS.Timeout | undefined;
  private statusWrite: Promise<void> = Promise.resolve();
  private terminating: Promise<void> | undefined;
  private deleting: Promise<void> | undefined;
  private volumesReady = false;
  private volumeSync: Promise<void> = Promise.resolve();

  constructor(
    private pod: V1Pod,
    private readonly ctx: KubeletContext,
  ) {
    this.uid = pod.metadata!.uid!;
    this.podDir = join(ctx.dir, 'pods', this.uid);
    this.root = join(this.podDir, 'root');
    this.logDir = join(ctx.dir, 'logs', `${pod.metadata!.namespace}_${pod.metadata!.name}_${this.uid}`);
  }

  get namespace(): string {
    return this.pod.metadata!.namespace!;
  }

  get name(): string {
    return this.pod.metadata!.name!;
  }

  /** The container, main or init, by name. */
  container(name: string): ContainerRun | undefined {
    return [...this.runs, ...this.initRuns].find((r) => r.spec.name === name);
  }

  portsOf(container: string): PortMapping[] {
    return this.ports.get(container) ?? [];
  }

  async start(): Promise<void> {
    const specs = [...(this.pod.spec?.initContainers ?? []), ...(this.pod.spec?.containers ?? [])];
    const unknown = specs.filter((c) => !isDfnImage(this.ctx.images, c.image));
    if (unknown.length > 0) {
      // Nothing of the Pod runs: a half-run Pod would be worse than none.
      const images = unknown.map((c) => c.image).join(', ');
      const message = `the local kubelet runs only the dfn image (${this.ctx.images.repositories.join(', ')}); ${images} cannot run here`;
      const delay = this.ctx.failureDelayMs?.() ?? 0;
      if (delay > 0) {
        this.reason = {
          reason: 'UnsupportedImage',
          message: `${message} (failing in ${Math.round(delay / 1000)} s)`,
        };
        await this.writeStatus();
        await new Promise((r) => setTimeout(r, delay).unref());
        if (this.terminating) return;
      }
      return this.fail('UnsupportedImage', message);
    }
    await mkdir(this.root, { recursive: true });
    await this.allocatePorts(specs);
    for (const spec of this.pod.spec?.initContainers ?? []) this.initRuns.push(this.containerRun(spec, true));
    for (const spec of this.pod.spec?.containers ?? []) this.runs.push(this.containerRun(spec, false));
    this.scheduleStatus();
    while (!this.terminating && !(await this.syncVolumes(true))) {
      await new Promise((r) => setTimeout(r, 2_000));
    }
    if (this.terminating) return;
    for (const run of this.initRuns) {
      run.start();
      const exit = await run.done;
      if (this.terminating) return;
      if (exit.code !== 0) return this.settle();
    }
    this.initialized = true;
    for (const run of this.runs) run.start();
    this.phase = 'Running';
    this.scheduleStatus();
    await Promise.all(this.runs.map((r) => r.done));
    if (!this.terminating) this.settle();
  }

  /** A newer version of the Pod from the API server. */
  update(pod: V1Pod): void {
    this.pod = pod;
    if (pod.metadata?.deletionTimestamp) void this.terminate(true);
  }

  /** A ConfigMap or Secret changed, or a token is due: rewrite the mounted files that changed. */
  refreshVolumes(): void {
    if (this.volumesReady && !this.terminating) void this.syncVolumes(false);
  }

  /** Whether the Pod mounts this ConfigMap or Secret (directly or through a projected volume). */
  uses(kind: 'ConfigMap' | 'Secret', name: string): boolean {
    for (const v of this.pod.spec?.volumes ?? []) {
      if (kind === 'ConfigMap' && v.configMap?.name === name) return true;
      if (kind === 'Secret' && v.secret?.secretName === name) return true;
      for (const s of v.projected?.sources ?? []) {
        if (kind === 'ConfigMap' && s.configMap?.name === name) return true;
        if (kind === 'Secret' && s.secret?.name === name) return true;
      }
    }
    return false;
  }

  /**
   * Stops every container (SIGTERM, SIGKILL after the grace period); if the Pod was deleted, removes the
   * object once they are gone, as the kubelet's final say. Idempotent; a Pod stopped earlier (it failed
   * here) is still removed when its deletion comes.
   */
  terminate(deleteObject: boolean, maxGraceMs = Number.POSITIVE_INFINITY): Promise<void> {
    this.terminating ??= (async () => {
      const graceSeconds =
        this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30;
      const graceMs = Math.min(graceSeconds * 1000, maxGraceMs);
      await Promise.all([...this.initRuns, ...this.runs].map((r) => r.stop(graceMs)));
      clearTimeout(this.statusTimer);
      await this.statusWrite;
      this.ctx.tokens.forget(this.uid);
      await rm(this.podDir, { recursive: true, force: true });
    })();
    if (!deleteObject) return this.terminating;
    this.deleting ??= this.terminating.then(async () => {
      await this.ctx.core
        .deleteNamespacedPod({
          name: this.name,
          namespace: this.namespace,
          gracePeriodSeconds: 0,
          body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } },
        })
        .catch((err) => {
          if (err?.code !== 404 && err?.code !== 409)
            this.ctx.log('pod delete failed', { pod: this.name, err: String(err) });
        });
      this.ctx.forget?.(this.uid);
    });
    return this.deleting;
  }

  private containerRun(spec: V1Container, init: boolean): ContainerRun {
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    const hooks: ContainerHooks = {
      launch: () => this.launch(spec),
      changed: () => this.scheduleStatus(),
      // Init containers must succeed; they are retried unless the Pod never restarts anything.
      exited: (exit: ExitStatus) =>
        this.ctx.log('container exited', {
          pod: `${this.namespace}/${this.name}`,
          container: spec.name,
          code: exit.code,
          signal: exit.signal,
        }),
      shouldRestart: (exit: ExitStatus) => {
        if (this.terminating) return false;
        return init
          ? exit.code !== 0 && policy !== 'Never'
          : policy === 'Always' || (policy === 'OnFailure' && exit.code !== 0);
      },
      ports: (port) => this.resolvePort(spec.name, port),
    };
    const run = new ContainerRun(spec, join(this.logDir, spec.name), hooks, this.ctx.baseBackoffMs);
    run.graceMs = (this.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    return run;
  }

  private async launch(spec: V1Container) {
    const httpPort = this.httpPorts.get(spec.name)!;
    const api = this.ctx.apiServer;
    const base: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: this.root,
      HOSTNAME: this.pod.spec?.hostname ?? this.name,
      // What a cluster's `kubernetes` Service gives every Pod: here, the local API server.
      KUBERNETES_SERVICE_HOST: api.host,
      KUBERNETES_SERVICE_PORT: String(api.port),
      KUBERNETES_SERVICE_PORT_HTTPS: String(api.port),
      KUBERNETES_PORT: `tcp://${api.host}:${api.port}`,
      DFN_POD_ROOT: this.root,
      DFN_HTTP_PORT: String(httpPort),
      DFN_HTTP_HOST: LOOPBACK,
    };
    const env = containerEnv(this.pod, spec, this.ctx.sources, base);
    // The kubelet's own variables win: a Pod cannot point DFN_POD_ROOT elsewhere, nor open its port to the network.
    Object.assign(env, { DFN_POD_ROOT: this.root, DFN_HTTP_PORT: String(httpPort), DFN_HTTP_HOST: LOOPBACK });
    const argv = commandFor(this.ctx.images, spec, (s) => expand(s, env));
    const cwd = spec.workingDir ? inside(this.root, spec.workingDir) : this.root;
    await mkdir(cwd, { recursive: true });
    return { argv, env, cwd };
  }

  /** Every declared port gets a free loopback port; dfn's HTTP server gets the one named http (or the first). */
  private async allocatePorts(specs: V1Container[]): Promise<void> {
    const annotation: Record<string, PortMapping[]> = {};
    for (const spec of specs) {
      const mappings: PortMapping[] = [];
      for (const p of spec.ports ?? []) {
        mappings.push({
          ...(p.name ? { name: p.name } : {}),
          containerPort: p.containerPort,
          hostPort: await freePort(),
        });
      }
      const http = mappings.find((m) => m.name === 'http') ?? mappings[0];
      this.httpPorts.set(spec.name, http?.hostPort ?? (await freePort()));
      this.ports.set(spec.name, mappings);
      annotation[spec.name] = mappings;
    }
    await this.ctx.core
      .patchNamespacedPod(
        {
          name: this.name,
          namespace: this.namespace,
          body: { metadata: { annotations: { [LOCAL_PORTS_ANNOTATION]: JSON.stringify(annotation) } } },
        },
        merge(),
      )
      .catch((err) =>
        this.ctx.log('could not annotate the pod with its ports', { pod: this.name, err: String(err) }),
      );
  }

  private resolvePort(container: string, port: number | string): number | undefined {
    const mappings = this.ports.get(container) ?? [];
    const hit =
      typeof port === 'string' && !/^\d+$/.test(port)
        ? mappings.find((m) => m.name === port)
        : mappings.find((m) => m.containerPort === Number(port));
    // dfn serves one HTTP server: a probe of an undeclared port means that one.
    return (
      hit?.hostPort ??
      (typeof port === 'number' || /^\d+$/.test(String(port)) ? this.httpPorts.get(container) : undefined)
    );
  }

  /** Materialises every mount; false (status says why) if a ConfigMap or Secret is missing yet. */
  private syncVolumes(initial: boolean): Promise<boolean> {
    const next = this.volumeSync.then(async () => {
      try {
        const payloads = new Map<string, Payload | undefined>();
        for (const volume of this.pod.spec?.volumes ?? []) {
          payloads.set(volume.name, await volumePayload(this.pod, volume, this.ctx));
        }
        for (const spec of [...(this.pod.spec?.initContainers ?? []), ...(this.pod.spec?.containers ?? [])]) {
          for (const vm of spec.volumeMounts ?? []) {
            if (!payloads.has(vm.name))
              throw new KubeletError('CreateContainerConfigError', `no volume ${vm.name}`);
            await mount(this.root, this.podDir, vm, payloads.get(vm.name), initial);
          }
        }
        this.volumesReady = true;
        this.reason = undefined;
        return true;
      } catch (err) {
        if (!(err instanceof KubeletError)) throw err;
        if (err.reason === 'UnsupportedVolume') {
          await this.fail(err.reason, err.message);
          return false;
        }
        for (const run of this.runs) run.state = { waiting: { reason: err.reason, message: err.message } };
        this.scheduleStatus();
        return false;
      }
    });
    this.volumeSync = next.then(
      () => {},
      () => {},
    );
    return next;
  }

  private async fail(reason: string, message: string): Promise<void> {
    this.phase = 'Failed';
    this.reason = { reason, message };
    for (const spec of this.pod.spec?.containers ?? []) {
      if (!this.runs.some((r) => r.spec.name === spec.name)) {
        const run = this.containerRun(spec, false);
        run.state = { waiting: { reason, message } };
        this.runs.push(run);
      }
    }
    this.ctx.log('pod failed', { pod: `${this.namespace}/${this.name}`, reason, message });
    await this.terminate(false);
    await this.writeStatus();
  }

  /** No container will run again: the Pod ends Succeeded or Failed. */
  private settle(): void {
    const exits = [...this.initRuns, ...this.runs].map((r) => r.state);
    const failed = exits.some((s) => 'terminated' in s && s.terminated.exitCode !== 0);
    this.phase = failed ? 'Failed' : 'Succeeded';
    this.scheduleStatus();
  }

  private scheduleStatus(): void {
    if (this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      void this.writeStatus();
    }, STATUS_DEBOUNCE_MS);
  }

  private writeStatus(): Promise<void> {
    this.statusWrite = this.statusWrite.then(async () => {
      const status = this.status();
      const text = JSON.stringify(status);
      if (text === this.lastStatus) return;
      try {
        await this.ctx.core.patchNamespacedPodStatus(
          { name: this.name, namespace: this.namespace, body: { status } },
          merge(),
        );
        this.lastStatus = text;
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code !== 404) {
          this.ctx.log('pod status write failed', { pod: this.name, err: String(err) });
          setTimeout(() => this.scheduleStatus(), 1_000);
        }
      }
    });
    return this.statusWrite;
  }

  private containerStatus(run: ContainerRun) {
    return {
      name: run.spec.name,
      image: run.spec.image,
      imageID: run.spec.image,
      ...(run.containerId ? { containerID: run.containerId } : {}),
      ready: run.ready,
      started: run.started,
      restartCount: run.restartCount,
      state: run.state,
      ...(run.lastState ? { lastState: run.lastState } : {}),
    };
  }

  private status() {
    const now = new Date().toISOString();
    const allReady = this.runs.length > 0 && this.runs.every((r) => r.ready && r.running);
    const condition = (type: string, ok: boolean, reason?: string) => ({
      type,
      status: ok ? 'True' : 'False',
      lastTransitionTime: this.transition(type, ok, now),
      ...(ok || !reason ? {} : { reason }),
    });
    // Running once a main container has started (one still waiting for its config keeps the Pod Pending).
    const phase = this.phase === 'Running' && !this.runs.some((r) => r.everStarted) ? 'Pending' : this.phase;
    return {
      phase,
      ...(this.reason ?? {}),
      hostIP: LOOPBACK,
      hostIPs: [{ ip: LOOPBACK }],
      podIP: LOOPBACK,
      podIPs: [{ ip: LOOPBACK }],
      startTime: this.startTime.toISOString(),
      conditions: [
        condition('PodScheduled', true),
        condition('Initialized', this.initialized, 'ContainersNotInitialized'),
        condition('ContainersReady', allReady, 'ContainersNotReady'),
        condition('Ready', allReady, 'ContainersNotReady'),
      ],
      ...(this.initRuns.length
        ? { initContainerStatuses: this.initRuns.map((r) => this.containerStatus(r)) }
        : {}),
      containerStatuses: this.runs.map((r) => this.containerStatus(r)),
    };
  }

  private readonly transitions = new Map<string, { ok: boolean; at: string }>();
  private transition(type: string, ok: boolean, now: string): string {
    const last = this.transitions.get(type);
    if (last && last.ok === ok) return last.at;
    this.transitions.set(type, { ok, at: now });
    return now;
  }
}
