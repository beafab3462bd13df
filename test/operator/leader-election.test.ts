// Leader election on a real Lease: of two candidates one leads; a graceful stop hands over at once (the
// lease is released); a leader that dies without releasing is replaced once its lease has expired.

import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { silentProcessLogger } from '../../lib/telemetry.js';
import { LeaderElector } from '../../operator/machinery/leader-election.js';
import { useNamespace } from '../helpers/kube.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('op-lease');
const electors: LeaderElector[] = [];

afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop()));
});

function candidate(lease: string, identity: string, events: string[], leaseDurationMs = 3000): LeaderElector {
  const e = new LeaderElector({
    kc: ns.kc,
    namespace: ns.name,
    name: lease,
    identity,
    leaseDurationMs,
    renewDeadlineMs: 2000,
    retryPeriodMs: 200,
    log: silentProcessLogger(),
    onStartedLeading: () => events.push(`${identity} leads`),
    onStoppedLeading: () => events.push(`${identity} stops`),
  });
  electors.push(e);
  e.start();
  return e;
}

const holder = async (lease: string) =>
  (await ns.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: lease, namespace: ns.name })).spec
    ?.holderIdentity;

describe('LeaderElector', () => {
  it('lets exactly one of two candidates lead', async () => {
    const events: string[] = [];
    const a = candidate('one', 'a', events);
    const b = candidate('one', 'b', events);
    await waitFor('a leader', () => a.isLeader || b.isLeader);
    // Several retry periods later, still one.
    await new Promise((r) => setTimeout(r, 1000));
    expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
    expect(events).toHaveLength(1);
    expect(await holder('one')).toBe(a.isLeader ? 'a' : 'b');
  });

  it('hands over at once when the leader stops gracefully (the lease is released)', async () => {
    const events: string[] = [];
    const a = candidate('two', 'a', events, 60_000);
    await waitFor('a to lead', () => a.isLeader);
    const b = candidate('two', 'b', events, 60_000);
    await a.stop();
    // A 60 s lease: only the release lets b lead within the wait.
    await waitFor('b to lead', () => b.isLeader, 10_000);
    expect(events).toEqual(['a leads', 'a stops', 'b leads']);
    expect(await holder('two')).toBe('b');
  });

  it('takes over from a leader that died without releasing, once its lease expired', async () => {
    const events: string[] = [];
    const a = candidate('three', 'a', events);
    await waitFor('a to lead', () => a.isLeader);
    const b = candidate('three', 'b', events);
    // Dead: it neither renews nor releases (a SIGKILLed process does neither).
    (a as unknown as { stopped: boolean }).stopped = true;
    const died = Date.now();
    await waitFor('b to lead', () => b.isLeader, 20_000);
    // Not before the lease duration (3 s) had passed since b last saw a renewal.
    expect(Date.now() - died).toBeGreaterThanOrEqual(2500);
    expect(await holder('three')).toBe('b');
  });
});
