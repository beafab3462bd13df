// Delivery status end to end: `dfn operator` as a process (its DeliveryTracker wired in), runner processes run
// by the local kubelet, a destination on 127.0.0.1 that fails on command. A failing destination moves
// retrying, failed, lastError and Healthy=False; recovery moves delivered and Healthy=True; `kubectl get fi`
// shows the numbers; the backlog is in status and on /metrics; counts never go backwards nor twice through
// a SIGKILLed operator replaced by a new one, and through a SIGKILLed runner the kubelet restarts.

import { CoreV1Api } from '@kubernetes/client-node';
import type { JetStreamClient, NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FunctionInstanceStatus } from '../../api/function-instance.js';
import { eventSubject, topology } from '../../api/jetstream.js';
import { Destination } from '../helpers/destination.js';
import { kubectl, useNamespace } from '../helpers/kube.js';
import { DFN_IMAGE, POD_TEST_TIMEOUT_MS, useKubelet } from '../helpers/kubelet.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  apply,
  condition,
  destinationFunction,
  functionInstance,
  read,
  waitForCondition,
  waitForStatus,
} from '../helpers/operator.js';
import {
  killOperatorProcesses,
  type OperatorProcess,
  startOperatorProcess,
} from '../helpers/operator-process.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('op-delivery-e2e');
const local = useKubelet(ns, { restartBackoffMs: 500 });
let nats: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let dest: Destination;
let operator: OperatorProcess;
const t = topology('dfn');
const WAIT_MS = 120_000;

const CODE = `
async function onTrack(event, settings) {
  const res = await fetch(settings.endpoint + '/a', { method: 'POST', body: JSON.stringify({ id: event.messageId }) });
  if (!res.ok) throw new RetryError('destination answered ' + res.status);
}
`;

/** Three attempts, 2 s apart: a failing event waits visibly (retrying) before it is dead-lettered (failed). */
const instance = (suspend = false) =>
  functionInstance(ns.name, 'a', {
    functionRef: { name: 'fn' },
    source: 'web',
    settings: { endpoint: dest.url },
    network: { allowPrivateNetwork: true },
    retry: { maxAttempts: 3, delaysMs: [2000], jitter: 0 },
    ...(suspend ? { suspend: true } : {}),
  });

/** Fast stats, polls and status writes, and a Healthy window short enough to recover within a test. */
const startOperator = (name: string) =>
  startOperatorProcess({
    ns,
    natsUrl: nats.url,
    name,
    args: [
      '--runner-image',
      DFN_IMAGE,
      '--allow-private-network',
      ns.name,
      '--no-leader-elect',
      '--status-interval',
      '500',
      '--runner-stats-interval',
      '500',
      '--delivery-poll-interval',
      '500',
      '--health-window',
      '8000',
      '--health-min-attempts',
      '5',
    ],
  });

let published = 0;
async function publish(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const id = `m-${++published}`;
    await js.publish(
      eventSubject(t, 'web', 'track'),
      JSON.stringify({ type: 'track', event: 'E', userId: 'u', messageId: id }),
      { msgID: `web:${id}` },
    );
  }
}

/** Answers the destination gave with 2xx: what the runners delivered. */
let answeredOk = 0;
let failing = false;

/** Every status of `a` read while a test ran: the delivered and failed counts seen, in order. */
const seen: { delivered: number; failed: number }[] = [];
let watching = true;
let watcher: Promise<void> | undefined;

const status = async (): Promise<FunctionInstanceStatus> =>
  (await read(ns.kc, 'FunctionInstance', ns.name, 'a'))?.status ?? {};
const untilStatus = (what: string, check: (s: FunctionInstanceStatus) => boolean, timeoutMs = WAIT_MS) =>
  waitForStatus(ns.kc, 'FunctionInstance', ns.name, 'a', what, check, timeoutMs);

/** Waits until status has counted every answer the destination gave, and nothing waits or retries. */
const settled = () =>
  untilStatus(
    `delivered = ${answeredOk} answered, nothing retrying`,
    (s) => s.delivered === answeredOk && s.retrying === 0 && s.backlog === 0,
  );

async function runnerPod(): Promise<string> {
  const pods = await ns.kc.makeApiClient(CoreV1Api).listNamespacedPod({
    namespace: ns.name,
    labelSelector: 'dfn.dev/function-instance=a',
  });
  const live = pods.items.filter((p) => !p.metadata?.deletionTimestamp);
  expect(live).toHaveLength(1);
  return live[0]!.metadata!.name!;
}

beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await nats.connect();
  js = nc.jetstream();
  dest = await Destination.start();
  dest.respond = () => {
    if (failing) return { status: 500, body: { error: 'down' } };
    answeredOk++;
    return undefined;
  };
  operator = await startOperator('op-1');
  await apply(
    ns.kc,
    destinationFunction(ns.name, 'fn', {
      code: CODE,
      settings: [{ name: 'endpoint', type: 'string', required: true }],
    }),
  );
  await apply(ns.kc, instance());
  await waitForCondition(
    ns.kc,
    'FunctionInstance',
    ns.name,
    'a',
    'Ready',
    'True',
    'Deployed',
    POD_TEST_TIMEOUT_MS,
  );
  watcher = (async () => {
    while (watching) {
      const s = await status().catch(() => undefined);
      if (s?.delivered !== undefined) seen.push({ delivered: s.delivered, failed: s.failed ?? 0 });
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
}, POD_TEST_TIMEOUT_MS * 2);

afterAll(async () => {
  watching = false;
  await watcher;
  killOperatorProcesses();
  await nc?.close();
  await dest?.close();
  await nats?.dispose();
});

describe('delivery status from runner processes, written by dfn operator', {
  timeout: POD_TEST_TIMEOUT_MS * 2,
}, () => {
  it('a failing destination: retrying and failed move, lastError is set, Healthy=False (DeliveriesFailing)', async () => {
    failing = true;
    await publish(10);
    const retrying = await untilStatus('retrying > 0', (s) => (s.retrying ?? 0) > 0);
    expect(retrying.delivered).toBe(0);
    const failed = await untilStatus('10 failed, none retrying', (s) => s.failed === 10 && s.retrying === 0);
    expect(failed).toMatchObject({ delivered: 0, deadLettered: 10, lastError: { type: 'Retry' } });
    expect(failed.lastError!.message).toContain('destination answered 500');
    const unhealthy = await waitForCondition(
      ns.kc,
      'FunctionInstance',
      ns.name,
      'a',
      'Healthy',
      'False',
      'DeliveriesFailing',
    );
    // Healthy is not part of Ready: the runners run as specified.
    expect(condition(unhealthy, 'Ready')?.status).toBe('True');
    const table = await kubectl(['get', 'fi', 'a', '-o', 'wide', '--no-headers'], { namespace: ns.name });
    // FUNCTION REVISION READY DELIVERED RETRYING FAILED LAST-ERROR BACKLOG HEALTHY AGE
    expect(table.stdout).toMatch(/^a\s+fn\s+1\s+True\s+0\s+0\s+10\s+Retry\s+0\s+False\s/);
  });

  it('the destination recovers: delivered moves and Healthy=True (DeliveriesSucceeding)', async () => {
    failing = false;
    // A trickle until Healthy flips: the window then holds recent successes, and the failures age out.
    let trickling = true;
    const trickle = (async () => {
      while (trickling) {
        await publish(1);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      await waitForCondition(
        ns.kc,
        'FunctionInstance',
        ns.name,
        'a',
        'Healthy',
        'True',
        'DeliveriesSucceeding',
        WAIT_MS,
      );
    } finally {
      trickling = false;
      await trickle;
    }
    const s = await settled();
    expect(s.delivered).toBeGreaterThan(0);
    expect(s.failed).toBe(10);
    const table = await kubectl(['get', 'fi', 'a', '-o', 'wide', '--no-headers'], { namespace: ns.name });
    expect(table.stdout).toMatch(
      new RegExp(`^a\\s+fn\\s+1\\s+True\\s+${s.delivered}\\s+0\\s+10\\s+Retry\\s+0\\s+True\\s`),
    );
    const fn = await waitForStatus(
      ns.kc,
      'DestinationFunction',
      ns.name,
      'fn',
      'its instance summed',
      (f) => f.delivered === s.delivered,
    );
    expect(fn).toMatchObject({ instances: 1, delivered: s.delivered, failed: 10, retrying: 0 });
  });

  it('a suspended instance: its backlog in status and in /metrics, delivered once it resumes', async () => {
    await apply(ns.kc, instance(true));
    await waitFor(
      'no runner pod',
      async () => {
        const pods = await ns.kc
          .makeApiClient(CoreV1Api)
          .listNamespacedPod({ namespace: ns.name, labelSelector: 'dfn.dev/function-instance=a' });
        return pods.items.length === 0;
      },
      WAIT_MS,
    );
    await publish(7);
    await untilStatus('backlog 7', (s) => s.backlog === 7);
    const gauge = new RegExp(
      `^dfn_operator_instance_backlog\\{namespace="${ns.name}",function_instance="a"\\} 7$`,
      'm',
    );
    await waitFor('the backlog gauge at 7', async () => gauge.test((await operator.get('/metrics')).body));
    const before = answeredOk;
    await apply(ns.kc, instance(false));
    const s = await settled();
    expect(answeredOk).toBe(before + 7);
    expect(s.delivered).toBe(answeredOk);
  });

  it('SIGKILL of the operator, a new one started: counts continue from status, never backwards nor twice', async () => {
    const before = await settled();
    const base = before.delivered ?? 0;
    const healthy = condition(before, 'Healthy')!;
    expect(healthy.status).toBe('True');
    operator.child.kill('SIGKILL');
    await operator.exited;
    operator = await startOperator('op-2');
    // Ready once leading with the tracker listening; then it has heard the runner: the runner's counters so
    // far are its baseline (they may be in status already), not added again…
    await waitFor(
      'the new operator to lead with its tracker started',
      async () => {
        const r = await operator.get('/readyz');
        return r.status === 200 && r.body.role === 'leading';
      },
      WAIT_MS,
    );
    await waitFor('the new tracker to hear the runner', async () =>
      /^dfn_operator_runner_stats_messages_total\{result="accepted"\} [1-9]/m.test(
        (await operator.get('/metrics')).body,
      ),
    );
    // It has reconciled the instance with its tracker (the resync on connecting): nothing to write, or a write.
    await waitFor('the new operator to have judged the status', async () =>
      /^dfn_operator_status_writes(_skipped)?_total\{kind="FunctionInstance"[^}]*\} [1-9]/m.test(
        (await operator.get('/metrics')).body,
      ),
    );
    const restarted = await status();
    expect(restarted.delivered).toBe(base);
    // The stored verdict carried over: Healthy neither vanished nor flipped (its transition time is the same).
    expect(condition(restarted, 'Healthy')).toEqual(healthy);
    await publish(5);
    // …and what the runner delivers from now on is added to it.
    const after = await untilStatus(`delivered ${base + 5}`, (s) => s.delivered === base + 5);
    expect(after.failed).toBe(before.failed);
    expect(answeredOk).toBe(base + 5);
    expect(condition(after, 'Healthy')).toEqual(healthy);
    // A settling interval later, still exact: no late double count of the runner's earlier counters.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await status()).delivered).toBe(base + 5);
  });

  it('SIGKILL of the runner process, restarted by the kubelet: counts continue, no reset, no double count', async () => {
    const before = await settled();
    const base = before.delivered ?? 0;
    const pod = await runnerPod();
    const container = local.kubelet.pod(ns.name, pod)!.container('runner')!;
    const pid = container.pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor(
      'the runner restarted and ready',
      async () => {
        const p = await ns.kc.makeApiClient(CoreV1Api).readNamespacedPod({ name: pod, namespace: ns.name });
        const c = p.status?.containerStatuses?.[0];
        return c?.restartCount === 1 && c.ready;
      },
      WAIT_MS,
    );
    expect(container.pid).not.toBe(pid);
    await publish(5);
    const after = await untilStatus(`delivered ${base + 5}`, (s) => s.delivered === base + 5);
    expect(answeredOk).toBe(base + 5);
    expect(after.failed).toBe(before.failed);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await status()).delivered).toBe(base + 5);
  });

  it('never showed a count going backwards', () => {
    expect(seen.length).toBeGreaterThan(10);
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.delivered).toBeGreaterThanOrEqual(seen[i - 1]!.delivered);
      expect(seen[i]!.failed).toBeGreaterThanOrEqual(seen[i - 1]!.failed);
    }
  });
});
