// bench:operator: 500 FunctionInstances over 5 functions on a real control plane and nats-server. Measures the
// seconds until all are Ready, against the ceiling of creating the same runner objects directly, and where
// the time went (when the runner Deployments were made and available, what the operator reconciled and wrote,
// the CPU seconds of each process); then the status writes during 60 s with nothing changing while unchanged
// runner stats arrive every 5 s: they reach the operator's DeliveryTracker (wired as in `dfn operator`), so a
// change it saw where there is none would be a write, and is counted.
//
// No runner process runs: Pods are bound and reported ready by the stand-in below (the local kubelet always
// runs them; 500 runners would measure the machine), so what is measured is the operator, the API server and
// kube-controller-manager. The benchmark's own reads are watches, not lists: it shares the operator's process.

import { readdir, readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  loadAllYaml,
  PatchStrategy,
  setHeaderOptions,
  type V1CustomResourceDefinition,
  type V1Deployment,
  V1MicroTime,
  type V1Pod,
  Watch,
} from '@kubernetes/client-node';
import type { FunctionInstance } from '../api/function-instance.js';
import type { RunnerStats } from '../api/jetstream.js';
import { runnerCounters, statsSubject, topology } from '../api/jetstream.js';
import { API_GROUP, API_VERSION } from '../api/kube-types.js';
import { silentProcessLogger } from '../lib/telemetry.js';
import { ControlPlane } from '../local/control-plane/control-plane.js';
import { repoRoot } from '../local/tools.js';
import { deliveryTracker, Operator } from '../operator/index.js';
import { Informer } from '../operator/machinery/informer.js';
import { RESOURCES } from '../operator/world.js';
import { NatsServer } from '../test/helpers/nats-server.js';
import { apply, destinationFunction, functionInstance } from '../test/helpers/operator.js';

const INSTANCES = Number(process.env.DFN_BENCH_INSTANCES ?? 500);
const FUNCTIONS = 5;
const IDLE_S = 60;
const STATS_EVERY_MS = 5000;
const CONVERGE_AIM_S = 60;

async function crds(): Promise<V1CustomResourceDefinition[]> {
  const dir = join(repoRoot(), 'crds');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml'));
  return (await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).flatMap((t) => loadAllYaml(t));
}

/** Runs `task` over `items`, `width` at a time. */
async function pool<T>(items: T[], width: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

/**
 * Stands in for a kubelet that reports Pods ready without running them: registers a Node, binds each
 * Pending Pod of the namespace to it and sets the Pod Running and Ready. Nothing is executed.
 */
async function podsReadyWithoutProcesses(kc: KubeConfig, namespace: string): Promise<() => Promise<void>> {
  const core = kc.makeApiClient(CoreV1Api);
  const node = 'bench-node';
  await core.createNode({
    body: {
      metadata: { name: node },
      status: { conditions: [{ type: 'Ready', status: 'True', reason: 'Bench', message: 'stand-in' }] },
    },
  });
  // The node controller marks the Pods of a node without a fresh Lease NotReady (after 40 s): renew it.
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const renew = async () => {
    const spec = { holderIdentity: node, leaseDurationSeconds: 40, renewTime: new V1MicroTime() };
    try {
      const lease = await coordination.readNamespacedLease({ name: node, namespace: 'kube-node-lease' });
      lease.spec = { ...lease.spec, ...spec };
      await coordination.replaceNamespacedLease({ name: node, namespace: 'kube-node-lease', body: lease });
    } catch {
      await coordination
        .createNamespacedLease({ namespace: 'kube-node-lease', body: { metadata: { name: node }, spec } })
        .catch(() => {});
    }
  };
  await renew();
  const renewing = setInterval(() => void renew(), 5000);
  const handled = new Set<string>();
  const ready = async (pod: V1Pod) => {
    const name = pod.metadata!.name!;
    if (handled.has(name) || pod.metadata?.deletionTimestamp || pod.status?.phase === 'Running') return;
    handled.add(name);
    if (!pod.spec?.nodeName) {
      await core.createNamespacedBinding({
        namespace,
        body: { metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: node } },
      });
    }
    const now = new Date().toISOString();
    await core.patchNamespacedPodStatus(
      {
        name,
        namespace,
        body: {
          status: {
            phase: 'Running',
            conditions: [
              { type: 'Ready', status: 'True', lastTransitionTime: now },
              { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
              { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
            ],
            containerStatuses: [
              {
                name: 'runner',
                ready: true,
                started: true,
                restartCount: 0,
                image: pod.spec!.containers[0]!.image!,
                imageID: '',
                state: { running: { startedAt: now } },
              },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  };
  // Watched (the operator's own informer, which restarts a dropped watch from where it was), not listed: a
  // list of 500 Pods a second cost this process, the operator's, more CPU than the operator itself. A Pod
  // whose binding or status patch failed is tried again from the cache a second later.
  const pods = new Informer<V1Pod>({
    kc,
    resource: POD,
    namespaces: [namespace],
    log: silentProcessLogger(),
  });
  const retries = new Set<NodeJS.Timeout>();
  const handle = (pod: V1Pod) =>
    void ready(pod).catch(() => {
      const name = pod.metadata!.name!;
      handled.delete(name);
      const retry = setTimeout(() => {
        retries.delete(retry);
        const current = pods.get(namespace, name);
        if (current) handle(current);
      }, 1000);
      retries.add(retry);
    });
  pods.onChange((pod, _previous, type) => {
    if (type !== 'delete') handle(pod);
  });
  await pods.start();
  for (const pod of pods.list(namespace)) handle(pod);
  return async () => {
    clearInterval(renewing);
    for (const retry of retries) clearTimeout(retry);
    await pods.stop();
  };
}

const POD = { apiVersion: 'v1', kind: 'Pod', plural: 'pods' } as const;
const DEPLOYMENT = { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments' } as const;

/** CPU seconds (user + system) so far of this process (the operator and the benchmark) and the control plane's. */
async function cpuSeconds(cp: ControlPlane): Promise<Record<string, number>> {
  const ticks = 100; // USER_HZ: /proc/<pid>/stat counts in clock ticks of 1/100 s on Linux
  const out: Record<string, number> = {};
  const own = process.cpuUsage();
  out['operator+bench'] = (own.user + own.system) / 1e6;
  for (const [name, pid] of Object.entries(await cp.pids())) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // Fields after the command (which may hold spaces, so split after its closing parenthesis): utime is 14th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out[name] = (Number(fields[11]) + Number(fields[12])) / ticks;
  }
  return out;
}

/** Resolves once `count` of the watched instances are Ready; `progress` is called on each change. */
function whenAllReady(
  instances: Informer<FunctionInstance & KubernetesObject>,
  count: number,
): { done: Promise<void>; ready: () => number } {
  const ready = new Set<string>();
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  instances.onChange((fi, _previous, type) => {
    const name = fi.metadata!.name!;
    const isReady = fi.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (type !== 'delete' && isReady) ready.add(name);
    else ready.delete(name);
    if (ready.size >= count) resolve();
  });
  return { done, ready: () => ready.size };
}

async function main(): Promise<void> {
  console.log(`bench:operator: ${INSTANCES} FunctionInstances over ${FUNCTIONS} functions`);
  const cp = await ControlPlane.start({ crds: await crds() });
  const nats = await NatsServer.start();
  const kc = cp.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const t = topology('dfn');
  try {
    // Ceiling: creating the objects the operator makes (a ConfigMap and a Deployment per instance) directly.
    await core.createNamespace({ body: { metadata: { name: 'ceiling' } } });
    const ceilingStart = Date.now();
    await pool([...Array(INSTANCES).keys()], 16, async (i) => {
      const cm = { metadata: { name: `fi-${i}-runner-config` }, data: { 'config.yaml': `instance: ${i}\n` } };
      await core.createNamespacedConfigMap({ namespace: 'ceiling', body: cm });
      await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
        namespace: 'ceiling',
        body: {
          metadata: { name: `fi-${i}-runner` },
          spec: {
            replicas: 0,
            selector: { matchLabels: { i: String(i) } },
            template: {
              metadata: { labels: { i: String(i) } },
              spec: { containers: [{ name: 'r', image: 'dfn' }] },
            },
          },
        },
      });
    });
    const ceilingS = (Date.now() - ceilingStart) / 1000;
    console.log(
      `ceiling: ${INSTANCES} ConfigMaps + Deployments created directly in ${ceilingS.toFixed(1)} s`,
    );

    const ns = 'bench';
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'write-keys' }, stringData: { 'write-keys.yaml': 'wk: web\n' } },
    });
    const stopPods = await podsReadyWithoutProcesses(kc, ns);
    const operator = new Operator({
      kc,
      namespaces: [ns],
      nats: { servers: nats.url },
      prefix: 'dfn',
      streamLimits: { storage: 'memory' },
      runner: { image: 'dfn:bench', natsUrl: nats.url, natsAuth: { kind: 'none' } },
      writeKeys: { namespace: ns, name: 'write-keys', key: 'write-keys.yaml' },
      allowPrivateNetwork: [],
      log: silentProcessLogger(),
      delivery: deliveryTracker(),
    });
    // Where the time goes: when each runner Deployment first appeared and was first available, when each
    // instance was first Ready (watched, so the benchmark's own reads cost next to nothing), and the CPU time
    // of each process meanwhile.
    const deploymentsSeen = new Informer<V1Deployment>({
      kc,
      resource: DEPLOYMENT,
      namespaces: [ns],
      log: silentProcessLogger(),
    });
    const created = new Map<string, number>();
    const available = new Map<string, number>();
    deploymentsSeen.onChange((d) => {
      const name = d.metadata!.name!;
      if (!created.has(name)) created.set(name, Date.now());
      if ((d.status?.availableReplicas ?? 0) >= 1 && !available.has(name)) available.set(name, Date.now());
    });
    const instancesSeen = new Informer<FunctionInstance & KubernetesObject>({
      kc,
      resource: RESOURCES.instances,
      namespaces: [ns],
      log: silentProcessLogger(),
    });
    const allReady = whenAllReady(instancesSeen, INSTANCES);
    await Promise.all([deploymentsSeen.start(), instancesSeen.start()]);
    const cpuBefore = await cpuSeconds(cp);

    operator.start();
    const started = Date.now();
    for (let f = 0; f < FUNCTIONS; f++) {
      await apply(
        kc,
        destinationFunction(ns, `fn-${f}`, { code: `async function onTrack(e) { return ${f}; }` }),
      );
    }
    await pool([...Array(INSTANCES).keys()], 16, (i) =>
      apply(
        kc,
        functionInstance(ns, `fi-${i}`, { functionRef: { name: `fn-${i % FUNCTIONS}` }, source: 'web' }),
      ),
    );
    const appliedS = (Date.now() - started) / 1000;
    const progress = setInterval(() => {
      console.log(
        `  ${((Date.now() - started) / 1000).toFixed(0)} s: ${allReady.ready()} of ${INSTANCES} Ready ` +
          `(${created.size} runner Deployments made, ${available.size} available)`,
      );
    }, 15_000);
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`only ${allReady.ready()} of ${INSTANCES} Ready after 600 s`)),
        600_000,
      ).unref(),
    );
    try {
      await Promise.race([allReady.done, timeout]);
    } finally {
      clearInterval(progress);
    }
    const convergeS = (Date.now() - started) / 1000;
    const cpuAfter = await cpuSeconds(cp);
    await Promise.all([deploymentsSeen.stop(), instancesSeen.stop()]);
    const last = (times: Map<string, number>) => (Math.max(...times.values()) - started) / 1000;
    const median = (times: Map<string, number>) => {
      const sorted = [...times.values()].sort((x, y) => x - y);
      return (sorted[Math.floor(sorted.length / 2)]! - started) / 1000;
    };
    console.log(
      `applied in ${appliedS.toFixed(1)} s; all ${INSTANCES} Ready after ${convergeS.toFixed(1)} s`,
    );
    console.log(
      `  runner Deployments made: median ${median(created).toFixed(1)} s, last ${last(created).toFixed(1)} s; ` +
        `available: median ${median(available).toFixed(1)} s, last ${last(available).toFixed(1)} s`,
    );
    // What the operator did meanwhile: reconciles by kind and result, writes by resource, status writes.
    const counts = async (metric: { get(): Promise<{ values: { labels: object; value: number }[] }> }) =>
      (await metric.get()).values
        .filter((v) => v.value > 0)
        .map((v) => `${Object.values(v.labels).join('/')} ${v.value}`)
        .join(', ');
    const m = operator.metrics;
    console.log(`  reconciles: ${await counts(m.reconciles)}`);
    console.log(`  writes: ${await counts(m.applies)}; status ${await counts(m.statusWrites)}`);
    const cpu = Object.entries(cpuAfter)
      .map(([name, s]) => `${name} ${(s - (cpuBefore[name] ?? 0)).toFixed(1)}`)
      .join(', ');
    console.log(
      `  CPU seconds while converging: ${cpu} (load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')})`,
    );

    // Idle: count every status change of our kinds for 60 s while unchanged stats keep arriving.
    let idleWrites = 0;
    const counting = { on: false };
    const watches = await Promise.all(
      ['functioninstances', 'destinationfunctions'].map((plural) =>
        new Watch(kc).watch(
          `/apis/${API_GROUP}/${API_VERSION}/namespaces/${ns}/${plural}`,
          { resourceVersion: '0' },
          (type) => {
            if (counting.on && type === 'MODIFIED') idleWrites++;
          },
          () => {},
        ),
      ),
    );
    const nc = await nats.connect();
    const startedAt = new Date().toISOString();
    const publishStats = () => {
      for (let i = 0; i < INSTANCES; i++) {
        const stats: RunnerStats = {
          instance: { namespace: ns, name: `fi-${i}` },
          replica: `fi-${i}-runner-0`,
          revision: '1',
          startedAt,
          at: new Date().toISOString(),
          inFlight: 0,
          counters: runnerCounters({ received: 10, delivered: 10, invocations: 10, executionMs: 20 }),
        };
        nc.publish(statsSubject(t, stats.instance), JSON.stringify(stats));
      }
    };
    // Once before counting: each instance's first stats are a change (delivered 0 → 10), written before
    // counting starts, as are the functions' sums.
    const accepted = async () =>
      (
        await operator.metrics.registry.getSingleMetric('dfn_operator_runner_stats_messages_total')?.get()
      )?.values.find((v) => v.labels.result === 'accepted')?.value ?? 0;
    publishStats();
    const objects = kc.makeApiClient(CustomObjectsApi);
    const written = async () => {
      const list = (await objects.listNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        namespace: ns,
        plural: 'destinationfunctions',
      })) as { items: { status?: { delivered?: number } }[] };
      return list.items.reduce((n, fn) => n + (fn.status?.delivered ?? 0), 0);
    };
    const firstDeadline = Date.now() + 120_000;
    while ((await written()) < INSTANCES * 10) {
      if (Date.now() > firstDeadline) throw new Error('the first stats did not reach every status in 120 s');
      await new Promise((r) => setTimeout(r, 500));
    }
    // The functions' sums are written after the instances' counts: all of them now include every instance.
    await new Promise((r) => setTimeout(r, STATS_EVERY_MS));
    const acceptedBefore = await accepted();
    counting.on = true;
    const timer = setInterval(publishStats, STATS_EVERY_MS);
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    clearInterval(timer);
    counting.on = false;
    const idleStats = (await accepted()) - acceptedBefore;
    // The measurement means something only if the stats reached the tracker: every publish of every instance
    // (the last one may coincide with the end of the window, so it is not required).
    const expectedStats = INSTANCES * (Math.floor((IDLE_S * 1000) / STATS_EVERY_MS) - 1);
    if (idleStats < expectedStats) {
      throw new Error(
        `the tracker accepted ${idleStats} stats messages while idle, expected ${expectedStats}`,
      );
    }
    for (const w of watches) w.abort();
    await nc.close();
    const writes = (await operator.metrics.statusWrites.get()).values.reduce((n, v) => n + v.value, 0);
    console.log(
      `idle ${IDLE_S} s with unchanged stats every ${STATS_EVERY_MS / 1000} s: ${idleStats} stats messages ` +
        `accepted by the delivery tracker, ${idleWrites} status changes seen (the operator wrote ${writes} ` +
        'statuses in all)',
    );
    console.log('pods: reported ready by the stand-in above, no runner process ran');
    console.log(
      `aim: converge under ${CONVERGE_AIM_S} s (${convergeS < CONVERGE_AIM_S ? 'met' : 'missed'}), 0 idle writes ` +
        `(${idleWrites === 0 ? 'met' : 'missed'}); converge / ceiling ${(convergeS / ceilingS).toFixed(1)}x`,
    );
    await stopPods();
    await operator.stop();
    console.log(
      JSON.stringify({
        instances: INSTANCES,
        converge_s: Math.round(convergeS * 10) / 10,
        idle_writes: idleWrites,
        idle_stats_messages: idleStats,
        ceiling_s: Math.round(ceilingS * 10) / 10,
      }),
    );
  } finally {
    await nats.dispose();
    await cp.stop();
  }
}

await main();
process.exit(0);
