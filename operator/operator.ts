// The operator as one object: leader election first; while leading, the watches feed two controllers (one
// per kind), NATS keeps the streams, delivery status flows in. The machinery and the domain meet only here.

import type {
  KubeConfig,
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1Secret,
} from '@kubernetes/client-node';
import type { ConnectionOptions } from 'nats';
import type { Logger } from 'pino';
import type { DestinationFunction } from '../api/destination-function.js';
import type { FunctionInstance } from '../api/function-instance.js';
import {
  ensureStreams,
  topology as makeTopology,
  type StreamLimits,
  type Topology,
} from '../api/jetstream.js';
import type { DeliveryContext, DeliverySource } from './delivery-seam.js';
import { CodeChecker } from './function/code-check.js';
import { changeConcernsInstances, FunctionReconciler } from './function/function-reconciler.js';
import { ConsumerKeeper } from './instance/consumers.js';
import { InstanceReconciler } from './instance/instance-reconciler.js';
import type { RunnerEnvironment } from './instance/runner-config.js';
import { Applier } from './machinery/apply.js';
import { Controller, type ObjectKey } from './machinery/controller.js';
import { Informer, type Resource } from './machinery/informer.js';
import { LeaderElector } from './machinery/leader-election.js';
import { type OperatorMetrics, operatorMetrics } from './metrics.js';
import { LABELS, MANAGED_BY } from './names.js';
import { NatsLink } from './nats-link.js';
import { GatewaySources, type WriteKeysSecretRef } from './sources.js';
import { StatusWriter } from './status-writer.js';
import { instancesOf, RESOURCES, type World } from './world.js';

export interface LeaderElectionConfig {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface OperatorOptions {
  kc: KubeConfig;
  /** Namespaces to reconcile; undefined for all. */
  namespaces?: readonly string[];
  /** The operator's own NATS connection (servers, credentials). */
  nats: ConnectionOptions;
  prefix: string;
  streamLimits?: Partial<StreamLimits>;
  runner: Omit<RunnerEnvironment, 'prefix'>;
  writeKeys?: WriteKeysSecretRef;
  /** Namespaces whose instances may set spec.network.allowPrivateNetwork; '*' for all. */
  allowPrivateNetwork: readonly string[] | '*';
  /** Undefined: no election (a single operator, e.g. tests of one reconciler). */
  leaderElection?: LeaderElectionConfig;
  /** Least time between two status writes of one object (ms). */
  statusIntervalMs?: number;
  /** Everything is reconciled again this often (ms), whatever the watches said. */
  resyncMs?: number;
  /** Revisions kept per function besides those in use. */
  revisionHistory?: number;
  /** Reconciles under way at once, per kind (default 16). */
  workers?: number;
  /** Backoff of failed reconciles (ms). */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  log: Logger;
  metrics?: OperatorMetrics;
  /**
   * Builds the delivery source once NATS is connected: `deliveryTracker()` (operator/delivery/) in `dfn operator`;
   * none: status has no delivery counts.
   */
  delivery?: (context: DeliveryContext) => DeliverySource;
}

export type OperatorRole = 'candidate' | 'starting' | 'leading' | 'stopped';

export class Operator {
  readonly metrics: OperatorMetrics;
  readonly topology: Topology;
  private roleValue: OperatorRole = 'candidate';
  private readonly elector: LeaderElector | undefined;
  private readonly nats: NatsLink;
  private readonly consumers: ConsumerKeeper;
  private readonly sources: GatewaySources;
  private delivery: DeliverySource | undefined;
  private deliveryStarted = false;
  private session: Promise<LeadingSession | undefined> | undefined;
  private readonly log: Logger;

  constructor(private readonly options: OperatorOptions) {
    this.log = options.log;
    this.metrics = options.metrics ?? operatorMetrics();
    this.topology = makeTopology(options.prefix);
    this.sources = new GatewaySources(options.writeKeys, this.log);
    this.nats = new NatsLink({
      connection: options.nats,
      log: this.log.child({ component: 'nats' }),
      onConnected: async (nc, jsm) => {
        // The one owner of the streams: made (or brought up to date) before anything else uses them.
        await ensureStreams(jsm, this.topology, options.streamLimits);
        // NATS may have lost consumers (a restart with a memory store): every instance ensures its own again.
        this.consumers.reset();
        this.sessionNow?.resyncAll();
        if (!this.delivery && options.delivery) {
          this.delivery = options.delivery({
            nc,
            jsm,
            topology: this.topology,
            log: this.log.child({ component: 'delivery' }),
            onChange: (key) => this.sessionNow?.deliveryChanged(key),
          });
          this.delivery.registerMetrics(this.metrics.registry);
        }
        // Retried with the rest of the set-up until it succeeds once.
        if (this.delivery && !this.deliveryStarted) {
          await this.delivery.start();
          this.deliveryStarted = true;
        }
      },
    });
    this.consumers = new ConsumerKeeper({ nats: this.nats, topology: this.topology });
    if (options.leaderElection) {
      this.elector = new LeaderElector({
        kc: options.kc,
        ...options.leaderElection,
        log: this.log.child({ component: 'leader-election' }),
        onStartedLeading: () => this.lead(),
        onStoppedLeading: () => void this.standDown(),
      });
    }
  }

  private sessionNow: LeadingSession | undefined;

  get role(): OperatorRole {
    return this.roleValue;
  }

  /** The lease holder as last seen (this operator's identity while leading). */
  get leader(): string | undefined {
    return this.elector?.holder;
  }

  start(): void {
    if (this.elector) this.elector.start();
    else this.lead();
  }

  private lead(): void {
    this.roleValue = 'starting';
    this.metrics.leader.set(1);
    this.nats.start();
    this.session = (async () => {
      const session = new LeadingSession(
        this.options,
        this.metrics,
        this.consumers,
        this.sources,
        () => this.delivery,
      );
      this.sessionNow = session;
      try {
        await session.start();
      } catch (err) {
        this.log.error({ error: (err as Error).message }, 'could not start reconciling');
        await session.stop();
        return undefined;
      }
      if (this.sessionNow === session) this.roleValue = 'leading';
      return session;
    })();
  }

  private async standDown(): Promise<void> {
    this.metrics.leader.set(0);
    const session = await this.session;
    this.session = undefined;
    this.sessionNow = undefined;
    if (this.roleValue !== 'stopped') this.roleValue = 'candidate';
    await session?.stop();
  }

  /** Ready: leading with synced caches and NATS set up, or waiting as a standby. */
  readiness(): { ready: boolean; reason: string } {
    switch (this.roleValue) {
      case 'candidate':
        return {
          ready: true,
          reason: `standby: ${this.leader ? `${this.leader} leads` : 'waiting for the lease'}`,
        };
      case 'starting':
        return { ready: false, reason: 'starting to lead: caches syncing' };
      case 'stopped':
        return { ready: false, reason: 'stopped' };
      case 'leading':
        return this.nats.ready
          ? { ready: true, reason: 'leading' }
          : { ready: false, reason: `leading, but NATS is not available: ${this.nats.problem}` };
    }
  }

  /** Graceful stop: reconciles under way end, the lease is released, NATS drained. */
  async stop(): Promise<void> {
    if (this.elector) await this.elector.stop();
    await this.standDown();
    this.roleValue = 'stopped';
    await this.delivery?.stop();
    await this.nats.close();
  }
}

/** Everything that runs while this operator leads; a new one each time it becomes leader. */
class LeadingSession {
  private readonly informers: Informer<KubernetesObject>[] = [];
  private readonly functions: Controller;
  private readonly instances: Controller;
  private readonly world: World;
  private resync: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: OperatorOptions,
    metrics: OperatorMetrics,
    consumers: ConsumerKeeper,
    private readonly sources: GatewaySources,
    delivery: () => DeliverySource | undefined,
  ) {
    const { kc, namespaces, log } = options;
    const informer = <T extends KubernetesObject>(resource: Resource, labelSelector?: string) => {
      const i = new Informer<T>({
        kc,
        resource,
        namespaces,
        log,
        ...(labelSelector ? { labelSelector } : {}),
      });
      this.informers.push(i as unknown as Informer<KubernetesObject>);
      return i;
    };
    const functions = informer<DestinationFunction & KubernetesObject>(RESOURCES.functions);
    const instances = informer<FunctionInstance & KubernetesObject>(RESOURCES.instances);
    const configMaps = informer<V1ConfigMap>(RESOURCES.configMaps);
    const secrets = informer<V1Secret>(RESOURCES.secrets);
    const deployments = informer<V1Deployment>(RESOURCES.deployments, `${LABELS.managedBy}=${MANAGED_BY}`);
    this.world = {
      functions,
      instances,
      configMaps,
      secrets,
      deployments,
      sources: () => sources.known(),
    };
    const applier = new Applier(kc, metrics);
    const status = new StatusWriter({ kc, minIntervalMs: options.statusIntervalMs ?? 2000, metrics });
    const codeChecker = new CodeChecker();
    const queue = { baseBackoffMs: options.baseBackoffMs, maxBackoffMs: options.maxBackoffMs };
    // A reconcile mostly waits for the API server and NATS (up to five round trips for a new instance): with
    // 4 at a time, 500 new instances queued behind each other's round trips (docs/operator.md, Benchmark).
    const workers = options.workers ?? 16;
    this.functions = new Controller({
      ...queue,
      workers,
      log,
      metrics,
      reconciler: new FunctionReconciler({
        world: this.world,
        applier,
        status,
        codeChecker,
        log,
        revisionHistory: options.revisionHistory ?? 5,
      }),
    });
    const allowed = options.allowPrivateNetwork;
    this.instances = new Controller({
      ...queue,
      workers,
      log,
      metrics,
      reconciler: new InstanceReconciler({
        world: this.world,
        applier,
        status,
        codeChecker,
        consumers,
        get delivery() {
          return delivery();
        },
        env: { ...options.runner, prefix: options.prefix },
        privateNetwork: allowed === '*' ? '*' : new Set(allowed),
        log,
      }),
    });
    this.wire(functions, instances, configMaps, secrets, deployments);
  }

  private enqueueFunction(namespace: string, name: string | undefined): void {
    if (name) this.functions.enqueue({ namespace, name });
  }

  private enqueueInstancesOf(namespace: string, fnName: string): void {
    for (const fi of instancesOf(this.world, namespace, fnName)) this.instances.enqueue(keyOfObject(fi));
  }

  /** Which keys each watched change concerns. */
  private wire(
    functions: Informer<DestinationFunction & KubernetesObject>,
    instances: Informer<FunctionInstance & KubernetesObject>,
    configMaps: Informer<V1ConfigMap>,
    secrets: Informer<V1Secret>,
    deployments: Informer<V1Deployment>,
  ): void {
    functions.onChange((fn, previous, type) => {
      this.functions.enqueue(keyOfObject(fn));
      if (type !== 'update' || changeConcernsInstances(fn, previous)) {
        this.enqueueInstancesOf(fn.metadata.namespace!, fn.metadata.name!);
      }
    });
    instances.onChange((fi, previous) => {
      const ns = fi.metadata.namespace!;
      this.instances.enqueue(keyOfObject(fi));
      // The function counts its instances, sums their delivery and protects the revisions they run.
      this.enqueueFunction(ns, fi.spec?.functionRef?.name);
      if (previous?.spec?.functionRef?.name !== fi.spec?.functionRef?.name) {
        this.enqueueFunction(ns, previous?.spec?.functionRef?.name);
      }
    });
    configMaps.onChange((cm) => {
      const ns = cm.metadata!.namespace!;
      const owner = cm.metadata?.ownerReferences?.find((o) => o.controller);
      if (owner?.kind === RESOURCES.functions.kind) {
        this.enqueueFunction(ns, owner.name);
        this.enqueueInstancesOf(ns, owner.name);
      } else if (owner?.kind === RESOURCES.instances.kind) {
        this.instances.enqueue({ namespace: ns, name: owner.name });
      } else {
        for (const fn of this.world.functions.list(ns)) {
          if (fn.spec?.codeFrom?.configMapKeyRef?.name === cm.metadata!.name)
            this.functions.enqueue(keyOfObject(fn));
        }
      }
    });
    secrets.onChange((secret) => {
      const ns = secret.metadata!.namespace!;
      const name = secret.metadata!.name!;
      const { writeKeys } = this.options;
      if (writeKeys && ns === writeKeys.namespace && name === writeKeys.name) this.writeKeysChanged(secret);
      const managed = secret.metadata?.labels?.[LABELS.managedBy] === MANAGED_BY;
      for (const fi of this.world.instances.list(ns)) {
        const uses = Object.values(fi.spec?.secretSettings ?? {}).some((s) => s.secretKeyRef.name === name);
        // A changed Secret rolls exactly the instances that use it (their checksum changes).
        if (uses || managed) this.instances.enqueue(keyOfObject(fi));
      }
    });
    deployments.onChange((d) => {
      const owner = d.metadata?.ownerReferences?.find((o) => o.kind === RESOURCES.instances.kind);
      if (owner) this.instances.enqueue({ namespace: d.metadata!.namespace!, name: owner.name });
    });
  }

  private writeKeysChanged(secret: V1Secret | undefined): void {
    this.sources.update(secret);
    for (const fi of this.world.instances.list()) this.instances.enqueue(keyOfObject(fi));
  }

  deliveryChanged(key: ObjectKey): void {
    this.instances.enqueue(key);
    const fi = this.world.instances.get(key.namespace, key.name);
    this.enqueueFunction(key.namespace, fi?.spec?.functionRef?.name);
  }

  async start(): Promise<void> {
    const { writeKeys, kc, log } = this.options;
    let writeKeysInformer: Informer<V1Secret> | undefined;
    const inScope =
      !this.options.namespaces || (writeKeys && this.options.namespaces.includes(writeKeys.namespace));
    if (writeKeys && !inScope) {
      // Outside the watched namespaces: a watch of that one Secret (RBAC: its name only).
      writeKeysInformer = new Informer<V1Secret>({
        kc,
        resource: RESOURCES.secrets,
        namespaces: [writeKeys.namespace],
        fieldSelector: `metadata.name=${writeKeys.name}`,
        log,
      });
      writeKeysInformer.onChange((s, _p, type) => this.writeKeysChanged(type === 'delete' ? undefined : s));
      this.informers.push(writeKeysInformer as unknown as Informer<KubernetesObject>);
    }
    await Promise.all(this.informers.map((i) => i.start()));
    if (writeKeys) {
      const cache = writeKeysInformer ?? (this.world.secrets as Informer<V1Secret>);
      this.sources.update(cache.get(writeKeys.namespace, writeKeys.name));
    }
    this.functions.start();
    this.instances.start();
    this.resyncAll();
    const every = this.options.resyncMs ?? 10 * 60_000;
    this.resync = setInterval(() => this.resyncAll(), every);
    this.resync.unref();
    log.info(
      { functions: this.world.functions.list().length, instances: this.world.instances.list().length },
      'caches synced: reconciling',
    );
  }

  resyncAll(): void {
    for (const fn of this.world.functions.list()) this.functions.enqueue(keyOfObject(fn));
    for (const fi of this.world.instances.list()) this.instances.enqueue(keyOfObject(fi));
  }

  async stop(): Promise<void> {
    clearInterval(this.resync);
    await Promise.all([this.functions.stop(), this.instances.stop()]);
    await Promise.all(this.informers.map((i) => i.stop()));
  }
}

const keyOfObject = (o: { metadata?: { namespace?: string; name?: string } }): ObjectKey => ({
  namespace: o.metadata!.namespace!,
  name: o.metadata!.name!,
});
