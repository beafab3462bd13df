// The shared Kubernetes control plane of a test run (test/setup/control-plane.ts starts it), a namespace
// of its own for each test file, and the built kubectl, run as a user would.

import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig, type V1Deployment, type V1PodSpec } from '@kubernetes/client-node';
import { afterAll, beforeAll, inject } from 'vitest';
import { kubeConfigFrom } from '../../local/control-plane/control-plane.js';
import { FAILED_FILE, READY_FILE, type ReadyInfo } from './kube-state.js';
import { kubectlPath } from './tools.js';
import { waitFor } from './wait.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeStateDir: string;
  }
}

export interface SharedControlPlane extends ReadyInfo {
  kubeConfig(): KubeConfig;
}

let shared: Promise<SharedControlPlane> | undefined;

/** The run's control plane, once it is ready (the global set-up starts it in the background). */
export function sharedControlPlane(): Promise<SharedControlPlane> {
  shared ??= (async () => {
    const dir = inject('kubeStateDir');
    const ready = join(dir, READY_FILE);
    const failed = join(dir, FAILED_FILE);
    await waitFor(
      'the shared control plane (test/setup/control-plane.ts)',
      () => existsSync(ready) || existsSync(failed),
      180_000,
      100,
    );
    if (existsSync(failed)) {
      throw new Error(`the shared control plane did not start:\n${readFileSync(failed, 'utf8')}`);
    }
    const info = JSON.parse(readFileSync(ready, 'utf8')) as ReadyInfo;
    return { ...info, kubeConfig: () => kubeConfigFrom(info.kubeconfigPath) };
  })();
  return shared;
}

export interface TestNamespace {
  /** Set once beforeAll has run. */
  readonly name: string;
  readonly kc: KubeConfig;
  readonly cp: SharedControlPlane;
}

/**
 * A namespace of this test file's own on the shared control plane: created (with its default
 * ServiceAccount) before the file's tests, deleted after them.
 */
export function useNamespace(prefix: string): TestNamespace {
  const state: { name?: string; kc?: KubeConfig; cp?: SharedControlPlane } = {};
  beforeAll(async () => {
    state.cp = await sharedControlPlane();
    state.kc = state.cp.kubeConfig();
    const core = state.kc.makeApiClient(CoreV1Api);
    const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
    await core.createNamespace({ body: { metadata: { name, labels: { 'dfn.dev/test': prefix } } } });
    // kube-controller-manager adds the default ServiceAccount: Pods cannot be created before it exists.
    await waitFor(`ServiceAccount ${name}/default`, () =>
      core.readNamespacedServiceAccount({ name: 'default', namespace: name }).then(
        () => true,
        () => false,
      ),
    );
    state.name = name;
  }, 240_000);
  afterAll(async () => {
    if (!state.name || !state.kc) return;
    // Deletion finishes in the background (finalizers, ~5 s): the next file does not wait for it.
    await state.kc.makeApiClient(CoreV1Api).deleteNamespace({ name: state.name });
  });
  return {
    get name() {
      if (!state.name) throw new Error('useNamespace: the namespace exists only once beforeAll has run');
      return state.name;
    },
    get kc() {
      if (!state.kc) throw new Error('useNamespace: not ready before beforeAll');
      return state.kc;
    },
    get cp() {
      if (!state.cp) throw new Error('useNamespace: not ready before beforeAll');
      return state.cp;
    },
  };
}

export interface KubectlRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built kubectl (never the machine's) against the shared control plane. */
export async function kubectl(
  args: string[],
  options: { input?: string; namespace?: string; timeoutMs?: number } = {},
): Promise<KubectlRun> {
  const cp = await sharedControlPlane();
  const dir = inject('kubeStateDir');
  const ns = options.namespace ? ['--namespace', options.namespace] : [];
  return new Promise((resolve, reject) => {
    const child = execFile(
      kubectlPath(),
      [...ns, ...args],
      {
        timeout: options.timeoutMs ?? 60_000,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: dir,
          KUBECONFIG: cp.kubeconfigPath,
          // Its discovery cache would otherwise go to ~/.kube/cache.
          KUBECACHEDIR: join(dir, 'kubectl-cache'),
        },
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** A Deployment of `replicas` Pods labelled app=<name>. */
export function deployment(name: string, spec: V1PodSpec, replicas = 1): V1Deployment {
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec },
    },
  };
}
