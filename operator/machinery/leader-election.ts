// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does (client-node has none):
// acquire when the holder's lease expired by our own clock, renew every retry period, stop leading when a
// renewal has not succeeded within the renew deadline, and release the lease on a graceful stop.

import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describe } from './informer.js';

export interface LeaderElectionOptions {
  kc: KubeConfig;
  namespace: string;
  name: string;
  /** Unique per process: the pod name plus a random suffix. */
  identity: string;
  /** How long a lease holds without renewal before another candidate may take it (ms). */
  leaseDurationMs: number;
  /** The leader gives up when it could not renew for this long (ms); below leaseDurationMs. */
  renewDeadlineMs: number;
  /** Between attempts to acquire or renew (ms). */
  retryPeriodMs: number;
  log: Logger;
  onStartedLeading: () => void;
  /** Leadership lost (renewal failed) or released: stop reconciling at once. */
  onStoppedLeading: () => void;
}

const NOT_FOUND = 404;
const CONFLICT = 409;

function statusCode(err: unknown): number | undefined {
  return (err as { code?: number })?.code;
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastRenewed = 0;
  /** The record we last saw and when we saw it change: expiry is judged by our clock, not the holder's. */
  private observed: { holder: string; renewTime: string; at: number } | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly options: LeaderElectionOptions) {
    if (options.renewDeadlineMs >= options.leaseDurationMs) {
      throw new Error('leader election: the renew deadline must be shorter than the lease duration');
    }
    this.api = options.kc.makeApiClient(CoordinationV1Api);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder we last saw (ours when leading). */
  get holder(): string | undefined {
    return this.observed?.holder || undefined;
  }

  start(): void {
    this.stopped = false;
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs, log } = this.options;
    while (!this.stopped) {
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew();
      } catch (err) {
        log.warn({ error: describe(err) }, 'leader election: lease request failed');
      }
      if (this.stopped) break;
      if (ok) {
        this.lastRenewed = Date.now();
        if (!this.leading) {
          this.leading = true;
          log.info({ lease: this.leaseName, identity: this.options.identity }, 'became leader');
          this.options.onStartedLeading();
        }
      } else if (this.leading && Date.now() - this.lastRenewed >= renewDeadlineMs) {
        this.leading = false;
        log.error({ lease: this.leaseName }, 'lost leadership: the lease could not be renewed in time');
        this.options.onStoppedLeading();
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, retryPeriodMs);
      });
    }
  }

  private get leaseName(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity, leaseDurationMs } = this.options;
    const now = new V1MicroTime();
    const durationSeconds = Math.max(1, Math.ceil(leaseDurationMs / 1000));
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusCode(err) !== NOT_FOUND) throw err;
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
      } catch (createErr) {
        if (statusCode(createErr) === CONFLICT) return false; // another candidate created it first
        throw createErr;
      }
      this.observed = { holder: identity, renewTime: '', at: Date.now() };
      return true;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    // Compared as the server wrote it (a MicroTime string): only whether it changed matters.
    const renewTime = String(spec.renewTime ?? '');
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: Date.now() };
    }
    const heldByOther = holder !== '' && holder !== identity;
    const otherDurationMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (heldByOther && this.observed.at + otherDurationMs > Date.now()) return false;

    const takingOver = holder !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: now,
      acquireTime: takingOver ? now : (spec.acquireTime ?? now),
      leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver && holder !== '' ? 1 : 0),
    };
    try {
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
    } catch (err) {
      if (statusCode(err) === CONFLICT) return false; // someone wrote it meanwhile: judge again next round
      throw err;
    }
    this.observed = { holder: identity, renewTime: '', at: Date.now() };
    return true;
  }

  /** Stops campaigning; a leader releases the lease so a standby takes over at once, not after it expires. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
    this.loop = undefined;
    if (!this.leading) return;
    this.leading = false;
    this.options.onStoppedLeading();
    try {
      const { namespace, name, identity } = this.options;
      const lease = await this.api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      lease.spec = {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        renewTime: new V1MicroTime(),
      };
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      this.options.log.info({ lease: this.leaseName }, 'released the leader lease');
    } catch (err) {
      this.options.log.warn({ error: describe(err) }, 'could not release the leader lease');
    }
  }
}
