// The Node this kubelet is: registered Ready with the machine's capacity, kept alive by a Lease renewed
// every 10 s (kube-controller-manager's node lifecycle controller evicts the Pods of a silent node).

import { arch, cpus, hostname, platform, release, totalmem } from 'node:os';
import {
  CoordinationV1Api,
  type CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { LOOPBACK } from './downward.js';

const LEASE_NAMESPACE = 'kube-node-lease';
const LEASE_SECONDS = 40;
const RENEW_MS = 10_000;
const STATUS_MS = 60_000;
export const KUBELET_VERSION = 'v1.37.2-dfn-local';
export const NODE_LABEL = 'dfn.dev/local-kubelet';

const merge = () => setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
// metav1.MicroTime wants six fractional digits.
const microTime = (d = new Date()) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class NodeRegistration {
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly kc: KubeConfig,
    private readonly core: CoreV1Api,
    readonly name: string,
    private readonly kubeletPort: number | undefined,
  ) {}

  get labels(): Record<string, string> {
    return {
      'kubernetes.io/hostname': this.name,
      'kubernetes.io/os': platform() === 'darwin' ? 'darwin' : 'linux',
      'kubernetes.io/arch': arch() === 'x64' ? 'amd64' : arch(),
      [NODE_LABEL]: 'true',
    };
  }

  async register(): Promise<void> {
    try {
      await this.core.createNode({ body: { metadata: { name: this.name, labels: this.labels } } });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      await this.core.patchNode({ name: this.name, body: { metadata: { labels: this.labels } } }, merge());
    }
    await this.writeStatus(true);
    await this.renewLease();
    this.timers.push(setInterval(() => void this.renewLease().catch(() => {}), RENEW_MS));
    this.timers.push(setInterval(() => void this.writeStatus(true).catch(() => {}), STATUS_MS));
  }

  /** Stops the heartbeat and says the node is going away (its Pods' processes are gone with it). */
  async deregister(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.writeStatus(false).catch(() => {});
  }

  private async writeStatus(ready: boolean): Promise<void> {
    const now = new Date().toISOString();
    const condition = (type: string, status: string, reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    });
    const capacity = {
      cpu: String(cpus().length),
      memory: `${Math.floor(totalmem() / 1024)}Ki`,
      pods: '110',
    };
    await this.core.patchNodeStatus(
      {
        name: this.name,
        body: {
          status: {
            capacity,
            allocatable: capacity,
            conditions: [
              ready
                ? condition('Ready', 'True', 'KubeletReady', 'dfn local kubelet is posting ready status')
                : condition('Ready', 'False', 'KubeletStopped', 'dfn local kubelet stopped'),
              condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'no memory pressure'),
              condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'no disk pressure'),
              condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'no PID pressure'),
            ],
            // Only an InternalIP: the API server reaches this kubelet (for `kubectl logs`) on loopback.
            addresses: [{ type: 'InternalIP', address: LOOPBACK }],
            ...(this.kubeletPort ? { daemonEndpoints: { kubeletEndpoint: { Port: this.kubeletPort } } } : {}),
            nodeInfo: {
              machineID: this.name,
              systemUUID: this.name,
              bootID: String(process.pid),
              kernelVersion: release(),
              osImage: `${platform()} (${hostname()})`,
              containerRuntimeVersion: 'dfn-local://processes',
              kubeletVersion: KUBELET_VERSION,
              kubeProxyVersion: '',
              operatingSystem: platform() === 'darwin' ? 'darwin' : 'linux',
              architecture: arch() === 'x64' ? 'amd64' : arch(),
            },
          },
        },
      },
      merge(),
    );
  }

  private async renewLease(): Promise<void> {
    const api = this.kc.makeApiClient(CoordinationV1Api);
    const spec = { holderIdentity: this.name, leaseDurationSeconds: LEASE_SECONDS, renewTime: microTime() };
    try {
      await api.patchNamespacedLease(
        { name: this.name, namespace: LEASE_NAMESPACE, body: { spec } },
        merge(),
      );
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      await api.createNamespacedLease({
        namespace: LEASE_NAMESPACE,
        body: {
          metadata: { name: this.name },
          spec: { holderIdentity: this.name, leaseDurationSeconds: LEASE_SECONDS },
        },
      });
      await api.patchNamespacedLease(
        { name: this.name, namespace: LEASE_NAMESPACE, body: { spec } },
        merge(),
      );
    }
  }
}
