// `dfn operator` as a process, twice: one leads and reconciles, the other stands by; JSON logs, /healthz,
// /readyz and /metrics; SIGTERM ends with exit 0 and the lease released (the standby takes over at once);
// a SIGKILLed leader is replaced once its lease expires, and the new leader reconciles.

import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnDfn } from '../helpers/dfn.js';
import { useNamespace } from '../helpers/kube.js';
import { NatsServer } from '../helpers/nats-server.js';
import {
  apply,
  destinationFunction,
  functionInstance,
  TEST_IMAGE,
  waitForCondition,
} from '../helpers/operator.js';
import {
  killOperatorProcesses,
  type OperatorProcess,
  startOperatorProcess,
} from '../helpers/operator-process.js';
import { waitFor } from '../helpers/wait.js';

const ns = useNamespace('op-process');
let nats: NatsServer;

const startOperator = (name: string) =>
  startOperatorProcess({
    ns,
    natsUrl: nats.url,
    name,
    args: [
      '--runner-image',
      TEST_IMAGE,
      '--lease-namespace',
      ns.name,
      '--lease-duration',
      '4000',
      '--renew-deadline',
      '3000',
      '--retry-period',
      '300',
    ],
  });

const holder = async () =>
  (
    await ns.kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'dfn-operator', namespace: ns.name })
      .catch(() => undefined)
  )?.spec?.holderIdentity;

const json = (p: OperatorProcess, path: string) => p.get(path);

beforeAll(async () => {
  nats = await NatsServer.start();
}, 60_000);

afterAll(async () => {
  killOperatorProcesses();
  await nats?.dispose();
});

// Each test starts `dfn operator` processes (tsx, several seconds each on a loaded machine): more than vitest's 60 s.
describe('dfn operator', { timeout: 180_000 }, () => {
  let a: OperatorProcess;
  let b: OperatorProcess;

  it('two replicas: one leads and reconciles, the other stands by; both ready', async () => {
    a = await startOperator('op-a');
    await waitFor('op-a to hold the lease', async () => (await holder())?.startsWith('op-a_'), 60_000);
    b = await startOperator('op-b');
    await apply(ns.kc, destinationFunction(ns.name, 'fn', { code: 'async function onTrack() {}' }));
    await waitForCondition(ns.kc, 'DestinationFunction', ns.name, 'fn', 'Ready', 'True', 'RevisionReady');
    await waitFor(
      'both ready',
      async () => (await json(a, '/readyz')).status === 200 && (await json(b, '/readyz')).status === 200,
    );
    expect((await json(a, '/readyz')).body).toMatchObject({ status: 'ready', role: 'leading' });
    expect((await json(b, '/readyz')).body).toMatchObject({ status: 'ready', role: 'candidate' });
    expect((await json(b, '/healthz')).body).toMatchObject({ status: 'ok' });
  });

  it('logs JSON lines and serves its metrics', async () => {
    const lines = a.logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(lines.find((l) => l.msg === 'operator started')).toMatchObject({
      level: 'info',
      component: 'operator',
    });
    expect(lines.some((l) => l.msg === 'became leader')).toBe(true);
    const metrics = (await json(a, '/metrics')).body as string;
    expect(metrics).toMatch(/^dfn_operator_leader 1$/m);
    expect(metrics).toMatch(
      /^dfn_operator_reconciles_total\{kind="DestinationFunction",result="success"\} \d+/m,
    );
    expect(metrics).toMatch(/^dfn_operator_status_writes_total\{kind="DestinationFunction"\} \d+/m);
    expect(metrics).toMatch(/^dfn_operator_queue_depth\{kind="FunctionInstance"\} 0$/m);
    expect((await json(b, '/metrics')).body).toMatch(/^dfn_operator_leader 0$/m);
  });

  it('SIGTERM: exits 0 and releases the lease; the standby leads at once and reconciles', async () => {
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(a.logs.some((l) => l.includes('released the leader lease'))).toBe(true);
    // The lease lasts 4 s; a released one is taken within a few retry periods.
    await waitFor('op-b to lead', async () => (await holder())?.startsWith('op-b_'), 3000, 100);
    await apply(
      ns.kc,
      functionInstance(ns.name, 'after-handover', { functionRef: { name: 'fn' }, source: 'web' }),
    );
    await waitForCondition(ns.kc, 'FunctionInstance', ns.name, 'after-handover', 'ConsumerReady', 'True');
  });

  it('SIGKILL of the leader: another replica leads once the lease expired, and reconciles', async () => {
    const c = await startOperator('op-c');
    b.child.kill('SIGKILL');
    await b.exited;
    await waitFor('op-c to lead', async () => (await holder())?.startsWith('op-c_'), 30_000);
    await apply(
      ns.kc,
      functionInstance(ns.name, 'after-kill', { functionRef: { name: 'fn' }, source: 'web' }),
    );
    await waitForCondition(ns.kc, 'FunctionInstance', ns.name, 'after-kill', 'ConsumerReady', 'True');
    expect((await json(c, '/readyz')).body).toMatchObject({ role: 'leading' });
  });

  it('refuses bad flags with exit status 2', async () => {
    const p = spawnDfn([
      'operator',
      '--runner-image',
      'x',
      '--lease-duration',
      '1000',
      '--renew-deadline',
      '2000',
    ]);
    let stderr = '';
    p.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise((r) => p.on('exit', r));
    expect(code).toBe(2);
    expect(stderr).toContain('--renew-deadline must be shorter than --lease-duration');
  });

  it.each([
    ['not JSON', '{requests', 'expected JSON'],
    ['a misspelt field', '{"request":{"cpu":"1"}}', 'request'],
    [
      'a bad quantity',
      '{"limits":{"memory":"lots"}}',
      'must be a Kubernetes quantity, e.g. 500m or 128Mi at limits.memory',
    ],
    [
      'a request above its limit',
      '{"requests":{"memory":"1Gi"},"limits":{"memory":"512Mi"}}',
      'requests.memory (1Gi) is above limits.memory (512Mi)',
    ],
  ])('refuses --runner-resources that is %s, with exit status 2', async (_what, value, message) => {
    const p = spawnDfn(['operator', '--runner-image', 'x', '--runner-resources', value]);
    let stderr = '';
    p.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise((r) => p.on('exit', r));
    expect(code).toBe(2);
    expect(stderr).toContain("option '--runner-resources <json>' argument");
    expect(stderr).toContain(message);
  });
});
