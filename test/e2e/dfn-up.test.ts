// The whole system as a user runs it: `dfn up` (control plane, nats-server, local kubelet, the chart via
// helm), `kubectl apply` of the webhook example, events from Segment's analytics-node through the gateway
// to a destination on 127.0.0.1; a failing destination in `kubectl get fi` and in dead letters, `dfn
// replay` once it recovers; a rolled function, a deleted instance, Ctrl-C, `--state-dir`, `helm uninstall`.
// One stack for the whole file (two starts of it: the second on the kept state directory); tests run in order.

import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Analytics } from '@segment/analytics-node';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { consumerName, topology } from '../../api/jetstream.js';
import type { UpPorts } from '../../local/up/ports.js';
import { Destination, type RecordedRequest } from '../helpers/destination.js';
import { runDfn } from '../helpers/dfn.js';
import {
  DfnUp,
  descendants,
  freeUpPorts,
  type KubectlResult,
  kubectlFor,
  portArgs,
  UP_TIMEOUT_MS,
  type UpReady,
} from '../helpers/dfn-up.js';
import { alive } from '../helpers/processes.js';
import { helmPath } from '../helpers/tools.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLE = new URL('../../examples/webhook/', import.meta.url).pathname;
const INSTANCE = 'webhook-web';
const STEP_MS = 240_000;
const t = topology('dfn');

let work: string;
let home: string;
let stateDir: string;
let ports: UpPorts;
let up: DfnUp;
let ready: UpReady;
let kubectl: (args: string[], input?: string) => Promise<KubectlResult>;
let dest: Destination;
let nc: NatsConnection | undefined;
let sent = 0;
let starts = 0;
let failing: () => { status: number } | undefined = () => undefined;
const accepted: RecordedRequest[] = [];

/** The example's folder as a user edits it: the endpoint of this test's destination, a short retry schedule. */
function editedExample(functionEdit?: (code: string) => string): string {
  const dir = join(work, `example-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir);
  for (const file of readdirSync(EXAMPLE).filter((f) => f.endsWith('.yaml'))) {
    const docs = parseAllDocuments(readFileSync(join(EXAMPLE, file), 'utf8')).map((d) => d.toJS());
    for (const doc of docs) {
      if (doc?.kind === 'FunctionInstance') {
        doc.spec.settings.endpoint = dest.url;
        // Compressed: three attempts 6 s apart (long enough to be seen as RETRYING), then the dead letters.
        doc.spec.retry = { maxAttempts: 3, delaysMs: [6000], jitter: 0 };
      }
      if (doc?.kind === 'ConfigMap' && functionEdit)
        doc.data['function.js'] = functionEdit(doc.data['function.js']);
    }
    writeFileSync(join(dir, file), docs.map((d) => stringify(d)).join('---\n'));
  }
  return dir;
}

async function fi(): Promise<any> {
  const run = await kubectl(['get', 'fi', INSTANCE, '-o', 'json']);
  if (run.code !== 0) throw new Error(run.stderr);
  return JSON.parse(run.stdout);
}

const condition = (obj: any, type: string) => obj.status?.conditions?.find((c: any) => c.type === type);

/** Events sent the way a Segment user sends them, to the gateway `dfn up` printed; their messageIds. */
async function send(n: number, prefix: string): Promise<string[]> {
  const analytics = new Analytics({ writeKey: ready.writeKey, host: ready.gatewayUrl, flushInterval: 50 });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const messageId = `${prefix}-${++sent}`;
    ids.push(messageId);
    analytics.track({ userId: 'user-1', event: 'Order Completed', properties: { n: sent }, messageId });
  }
  await analytics.closeAndFlush({ timeout: 60_000 });
  return ids;
}

const delivered = (id: string) => accepted.filter((r) => r.json().messageId === id);

async function startUp(): Promise<void> {
  up = await DfnUp.start(
    ['--state-dir', stateDir, ...portArgs(ports)],
    { DFN_HOME: home },
    join(work, `up-${++starts}.log`),
  );
  ready = await up.ready();
  kubectl = kubectlFor(ready.kubeconfig, home);
}

function helm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      helmPath(),
      args,
      {
        timeout: 120_000,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          KUBECONFIG: ready.kubeconfig,
          HELM_CACHE_HOME: join(home, 'helm', 'cache'),
          HELM_CONFIG_HOME: join(home, 'helm', 'config'),
          HELM_DATA_HOME: join(home, 'helm', 'data'),
        },
      },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'dfn-e2e-up-'));
  home = join(work, 'home');
  stateDir = join(work, 'state');
  mkdirSync(home);
  ports = await freeUpPorts();
  dest = await Destination.start();
  // A failing destination answers 503 until told otherwise; `accepted` holds what it answered 200.
  dest.respond = (req) => {
    const answer = failing();
    if (!answer) accepted.push(req);
    return answer;
  };
  await startUp();
}, UP_TIMEOUT_MS + 60_000);

afterAll(async () => {
  await nc?.close();
  if (up?.running) await up.interrupt().catch(() => up.kill());
  await dest?.close();
  if (work) rmSync(work, { recursive: true, force: true });
}, 180_000);

describe('dfn up, driven as a user', { timeout: STEP_MS }, () => {
  it('prints the KUBECONFIG to export, the gateway URL and a write key of source web, and applies nothing', async () => {
    expect(existsSync(ready.kubeconfig)).toBe(true);
    expect(ready.gatewayUrl).toBe(`http://127.0.0.1:${ports.gateway}`);
    expect(ready.natsUrl).toBe(`nats://127.0.0.1:${ports.nats}`);
    expect(ready.source).toBe('web');
    expect(ready.writeKey).toMatch(/^wk_local_[0-9a-f]{24}$/);
    expect(up.output).toContain('Private networks are allowed in every namespace');
    for (const step of [
      'nats-server',
      'Kubernetes control plane',
      'local kubelet',
      'helm upgrade --install',
    ]) {
      expect(up.output).toMatch(new RegExp(`==> \\[\\d\\] ${step}`));
    }
    // The chart's operator and gateway run as Pods; nothing of the user's kind was applied.
    const pods = await kubectl(['get', 'pods', '-n', 'dfn-system', '-o', 'json']);
    const running = JSON.parse(pods.stdout).items.map((p: any) => ({
      component: p.metadata.labels['app.kubernetes.io/component'],
      phase: p.status.phase,
    }));
    expect(running).toEqual(
      expect.arrayContaining([
        { component: 'operator', phase: 'Running' },
        { component: 'gateway', phase: 'Running' },
      ]),
    );
    const mine = await kubectl(['get', 'dfn', '--all-namespaces']);
    expect(mine.stderr).toContain('No resources found');
  });

  it('kubectl apply -f examples/webhook/: events sent by analytics-node reach the destination', async () => {
    const applied = await kubectl(['apply', '-f', `${editedExample()}/`]);
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toContain(`functioninstance.dfn.dev/${INSTANCE} created`);
    await waitFor(
      'the instance Ready',
      async () => condition(await fi(), 'Ready')?.status === 'True',
      STEP_MS,
      500,
    );
    const ids = await send(3, 'hello');
    await waitFor(
      () => `3 deliveries (${dest.requests.length} requests so far)`,
      () => ids.every((id) => delivered(id).length > 0),
      120_000,
      250,
    );
    const first = delivered(ids[0]!)[0]!;
    expect(first.headers.authorization).toBe(`Basic ${btoa('sk_test_4f9a2c:')}`);
    expect(first.json()).toMatchObject({ type: 'track', event: 'Order Completed', userId: 'user-1' });
    const table = await kubectl(['get', 'destfn,fi']);
    expect(table.stdout).toMatch(/destinationfunction\.dfn\.dev\/webhook\s+True\s+1/);
    expect(table.stdout).toMatch(
      new RegExp(`functioninstance\\.dfn\\.dev/${INSTANCE}\\s+webhook\\s+1\\s+True`),
    );
  });

  it('a failing destination shows in kubectl get fi, its events are dead-lettered, and dfn replay delivers them', async () => {
    failing = () => ({ status: 503 });
    let last: any;
    // 8 events x 3 attempts: enough failed attempts for Healthy to be judged (more than half of at least 20
    // in the last 5 minutes, the operator's default policy), against the 3 that succeeded before.
    const ids = await send(8, 'fail');
    await waitFor(
      () => `RETRYING in the status (status: ${JSON.stringify(last)})`,
      async () => {
        last = (await fi()).status;
        return last?.retrying >= 1;
      },
      120_000,
      250,
    );
    await waitFor(
      () => `FAILED 8, LAST ERROR Retry and Healthy False (status: ${JSON.stringify(last)})`,
      async () => {
        const s = await fi();
        last = s.status;
        return (
          s.status?.failed >= 8 &&
          s.status?.lastError?.type === 'Retry' &&
          condition(s, 'Healthy')?.status === 'False'
        );
      },
      120_000,
      500,
    );
    const table = await kubectl(['get', 'fi', INSTANCE]);
    expect(table.stdout).toMatch(/RETRYING\s+FAILED\s+LAST ERROR/);
    expect(table.stdout).toMatch(
      new RegExp(`${INSTANCE}\\s+webhook\\s+1\\s+True\\s+\\d+\\s+\\d+\\s+8\\s+Retry`),
    );
    // The whole schedule: 3 attempts each, then the dead letters, read with the names kubectl uses.
    for (const id of ids) expect(dest.requests.filter((r) => r.json().messageId === id).length).toBe(3);
    const deliveries = await runDfn(['deliveries', '-n', 'default', `fi/${INSTANCE}`], {
      env: { DFN_HOME: home },
    });
    expect(deliveries.stderr).toBe('');
    expect(deliveries.stdout).toContain(`8 events are dead-lettered: \`dfn replay default/${INSTANCE}\``);
    expect(deliveries.stdout).toContain('webhook answered 503');

    failing = () => undefined;
    const replay = await runDfn(['replay', '-n', 'default', `fi/${INSTANCE}`], { env: { DFN_HOME: home } });
    expect(replay.stderr).toBe('');
    expect(replay.stdout).toBe(
      `Replayed 8 of 8 dead-lettered events selected for default/${INSTANCE} (removed from the dead-letter stream).\n`,
    );
    await waitFor(
      'the replayed events delivered',
      () => ids.every((id) => delivered(id).length === 1),
      120_000,
      250,
    );
    // Healthy is judged on the last 5 minutes of attempts: it stays False for now, with its reason.
    expect(condition(await fi(), 'Healthy')).toMatchObject({ status: 'False', reason: 'DeliveriesFailing' });
  });

  it('editing the function rolls the runners to a new revision without losing an event', async () => {
    failing = () => undefined; // recovered, even if the test before failed half-way
    const during: string[] = [];
    let sending = true;
    // A steady trickle (about five a second) through the whole roll.
    const sender = (async () => {
      while (sending) {
        during.push(...(await send(1, 'roll')));
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const edited = editedExample((code) =>
      code.replace(
        "'Content-Type': 'application/json',",
        "'Content-Type': 'application/json',\n      'X-Revision': '2',",
      ),
    );
    const applied = await kubectl(['apply', '-f', join(edited, 'code.yaml')]);
    expect(applied.stdout).toContain('configmap/webhook-code configured');
    await waitFor(
      'revision 2 ready',
      async () => {
        const s = await fi();
        return s.status?.revision === 2 && condition(s, 'Ready')?.status === 'True';
      },
      STEP_MS,
      500,
    );
    await waitFor(
      'only revision-2 runner pods',
      async () => {
        const pods = JSON.parse(
          (await kubectl(['get', 'pods', '-l', `dfn.dev/function-instance=${INSTANCE}`, '-o', 'json']))
            .stdout,
        ).items;
        return pods.length > 0 && pods.every((p: any) => p.metadata.annotations['dfn.dev/revision'] === '2');
      },
      STEP_MS,
      500,
    );
    sending = false;
    await sender;
    const after = await send(3, 'after');
    const all = [...during, ...after];
    const missing = () => all.filter((id) => delivered(id).length === 0);
    await waitFor(
      () => {
        const m = missing();
        const tried = m.filter((id) => dest.requests.some((r) => r.json().messageId === id));
        return (
          `every event sent during and after the roll delivered: ${m.length} of ${all.length} missing ` +
          `(${tried.length} of those reached the destination unanswered-ok), e.g. ${m.slice(0, 5).join(', ')}`
        );
      },
      () => missing().length === 0,
      STEP_MS,
      250,
    );
    expect(during.length).toBeGreaterThan(0);
    for (const id of after) expect(delivered(id)[0]!.headers['x-revision']).toBe('2');
  });

  it('deleting the instance stops its delivery and removes its consumer', async () => {
    nc = await connect({ servers: ready.natsUrl });
    const jsm = await nc.jetstreamManager();
    const consumer = consumerName({ namespace: 'default', name: INSTANCE });
    await jsm.consumers.info(t.eventsStream, consumer);
    const deleted = await kubectl(['delete', 'fi', INSTANCE, '--timeout=180s']);
    expect(deleted.stdout).toContain(`functioninstance.dfn.dev "${INSTANCE}" deleted`);
    await expect(jsm.consumers.info(t.eventsStream, consumer)).rejects.toThrow(/consumer not found/);
    await waitFor(
      'its runner pods gone',
      async () =>
        JSON.parse(
          (await kubectl(['get', 'pods', '-l', `dfn.dev/function-instance=${INSTANCE}`, '-o', 'json']))
            .stdout,
        ).items.length === 0,
      120_000,
      500,
    );
    const before = (await jsm.streams.info(t.eventsStream)).state.messages;
    const ids = await send(2, 'orphan');
    expect((await jsm.streams.info(t.eventsStream)).state.messages).toBe(before + 2);
    // Stored, and nothing is left that could deliver them: no consumer, no runner.
    expect(ids.every((id) => dest.requests.every((r) => r.json().messageId !== id))).toBe(true);
  });

  it('Ctrl-C stops every process it started; up again on the state dir finds the objects and the streams', async () => {
    const jsm = await nc!.jetstreamManager();
    const messages = (await jsm.streams.info(t.eventsStream)).state.messages;
    await nc!.close();
    nc = undefined;
    const pids = descendants(up.pid);
    // nats-server, etcd, kube-apiserver, kube-controller-manager, the operator and gateway Pods (and tethers).
    expect(pids.length).toBeGreaterThanOrEqual(6);
    const { writeKey } = ready;
    expect(await up.interrupt()).toBe(0);
    expect(up.output).toContain('Stopped.');
    await waitFor('every process of the stack gone', () => pids.every((pid) => !alive(pid)), 30_000, 100);
    expect(existsSync(join(home, 'up.json'))).toBe(false);

    await startUp();
    expect(ready.writeKey).toBe(writeKey);
    const destfn = JSON.parse((await kubectl(['get', 'destfn', 'webhook', '-o', 'json'])).stdout);
    expect(destfn.status.latestRevision ?? destfn.status.revision).toBe(2);
    nc = await connect({ servers: ready.natsUrl });
    const kept = (await (await nc.jetstreamManager()).streams.info(t.eventsStream)).state.messages;
    expect(kept).toBe(messages);
    // The same write key still sends through the new gateway Pod.
    const stored = await send(1, 'again');
    expect(stored).toHaveLength(1);
    expect((await (await nc.jetstreamManager()).streams.info(t.eventsStream)).state.messages).toBe(
      messages + 1,
    );
  });

  it('helm uninstall leaves no dfn objects behind but the CRDs', async () => {
    // The user's function first (Helm leaves custom resources to their owner), while the operator runs.
    const gone = await kubectl(['delete', 'destfn', 'webhook', '--timeout=180s']);
    expect(gone.stdout).toContain('destinationfunction.dfn.dev "webhook" deleted');
    const uninstall = await helm([
      'uninstall',
      'dfn',
      '--namespace',
      'dfn-system',
      '--wait',
      '--timeout',
      '3m',
    ]);
    expect(uninstall.stderr).toBe('');
    expect(uninstall.stdout).toContain('release "dfn" uninstalled');
    const kinds =
      'deployments,replicasets,pods,services,serviceaccounts,secrets,configmaps,roles,rolebindings,' +
      'clusterroles,clusterrolebindings,leases';
    for (const selector of ['app.kubernetes.io/instance=dfn', 'app.kubernetes.io/managed-by=dfn-operator']) {
      await waitFor(
        `no object labelled ${selector} left`,
        async () => {
          const left = await kubectl(['get', kinds, '--all-namespaces', '-l', selector, '-o', 'name']);
          return left.code === 0 && left.stdout.trim() === '';
        },
        120_000,
        1000,
      );
    }
    const dfnObjects = await kubectl(['get', 'destfn,fi', '--all-namespaces', '-o', 'name']);
    expect(dfnObjects.stdout.trim()).toBe('');
    const crds = await kubectl(['get', 'crd', '-o', 'name']);
    expect(crds.stdout).toContain(
      'customresourcedefinition.apiextensions.k8s.io/destinationfunctions.dfn.dev',
    );
    expect(crds.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/functioninstances.dfn.dev');
    expect(await up.interrupt()).toBe(0);
  });
});
