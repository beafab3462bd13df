// What kube-proxy would do for one Service, on loopback: a fixed local port (the gateway URL `dfn up`
// prints) forwarded to the Service's ready Pods, at the ports the local kubelet gave them. Pods come and go
// (rollouts, restarts); the forwarder follows them, so the URL stays the same for the whole run.

import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { CoreV1Api, type KubeConfig, type V1Pod, type V1Service } from '@kubernetes/client-node';
import { LOCAL_PORTS_ANNOTATION, type PortMapping } from '../kubelet/pod-worker.js';

export interface ServiceForwarderOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Label selector that finds the Service (e.g. app.kubernetes.io/component=gateway). */
  serviceSelector: string;
  /** The Service port to forward (its name, or the first port). */
  servicePort?: string;
  listenPort: number;
  /** How often the ready Pods are listed again. */
  refreshMs?: number;
}

const REFRESH_MS = 1_000;

/** A Pod's loopback port for a Service's targetPort, from the kubelet's annotation. */
export function podPortFor(pod: V1Pod, targetPort: number | string): number | undefined {
  let mapping: Record<string, PortMapping[]>;
  try {
    mapping = JSON.parse(pod.metadata?.annotations?.[LOCAL_PORTS_ANNOTATION] ?? '') as Record<
      string,
      PortMapping[]
    >;
  } catch {
    return undefined;
  }
  const all = Object.values(mapping).flat();
  const hit =
    typeof targetPort === 'string' && !/^\d+$/.test(targetPort)
      ? all.find((m) => m.name === targetPort)
      : all.find((m) => m.containerPort === Number(targetPort));
  return hit?.hostPort;
}

const isReady = (pod: V1Pod) =>
  !pod.metadata?.deletionTimestamp &&
  pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

export class ServiceForwarder {
  private backends: number[] = [];
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly core: CoreV1Api;

  private constructor(
    private readonly options: ServiceForwarderOptions,
    private readonly server: Server,
  ) {
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
  }

  static async start(options: ServiceForwarderOptions): Promise<ServiceForwarder> {
    const server = createServer();
    const forwarder = new ServiceForwarder(options, server);
    server.on('connection', (client) => forwarder.forward(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort, '127.0.0.1', () => resolve());
    });
    await forwarder.refresh();
    const loop = () => {
      forwarder.timer = setTimeout(async () => {
        await forwarder.refresh();
        loop();
      }, options.refreshMs ?? REFRESH_MS);
    };
    loop();
    return forwarder;
  }

  /** The loopback ports of the ready Pods behind the Service, as last listed. */
  get readyBackends(): readonly number[] {
    return this.backends;
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async refresh(): Promise<void> {
    try {
      const { namespace, serviceSelector } = this.options;
      const services = await this.core.listNamespacedService({ namespace, labelSelector: serviceSelector });
      const service: V1Service | undefined = services.items[0];
      const selector = service?.spec?.selector;
      if (!service || !selector) {
        this.backends = [];
        return;
      }
      const port =
        service.spec?.ports?.find((p) => p.name === this.options.servicePort) ?? service.spec?.ports?.[0];
      const target = port?.targetPort ?? port?.port;
      if (target === undefined) {
        this.backends = [];
        return;
      }
      const pods = await this.core.listNamespacedPod({
        namespace,
        labelSelector: Object.entries(selector)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      });
      this.backends = pods.items
        .filter(isReady)
        .map((p) => podPortFor(p, target as number | string))
        .filter((p): p is number => p !== undefined);
    } catch {
      // The API server is away for a moment: keep the last known Pods.
    }
  }

  private forward(client: Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    const backends = this.backends;
    if (backends.length === 0) {
      // No ready gateway: refuse as a Service without endpoints does.
      client.destroy();
      return;
    }
    const port = backends[this.next++ % backends.length]!;
    const upstream = createConnection({ port, host: '127.0.0.1' });
    this.sockets.add(upstream);
    upstream.on('close', () => this.sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  }
}
