// The ConfigMaps and Secrets Pods read (env, volumes), watched through client-node informers as a kubelet
// does, so a change reaches mounted files within moments; limited to the kubelet's namespaces if it has some.

import {
  CoreV1Api,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
  type ObjectCache,
  type V1ConfigMap,
  type V1Secret,
} from '@kubernetes/client-node';
import { KubeletError } from './errors.js';

export type SourceKind = 'ConfigMap' | 'Secret';
type Watched<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

const RESTART_AFTER_ERROR_MS = 1_000;

export class Sources {
  private readonly informers: Watched<KubernetesObject>[] = [];
  private readonly configMaps = new Map<string, Watched<V1ConfigMap>>();
  private readonly secrets = new Map<string, Watched<V1Secret>>();
  private readonly listeners = new Set<(kind: SourceKind, namespace: string, name: string) => void>();
  private stopped = false;

  constructor(
    private readonly kc: KubeConfig,
    /** Undefined: every namespace. */
    private readonly namespaces: readonly string[] | undefined,
  ) {}

  async start(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    for (const ns of this.namespaces ?? [undefined]) {
      const key = ns ?? '';
      const cm = this.watch<V1ConfigMap>(
        ns ? `/api/v1/namespaces/${ns}/configmaps` : '/api/v1/configmaps',
        () => (ns ? core.listNamespacedConfigMap({ namespace: ns }) : core.listConfigMapForAllNamespaces()),
        'ConfigMap',
      );
      const secret = this.watch<V1Secret>(
        ns ? `/api/v1/namespaces/${ns}/secrets` : '/api/v1/secrets',
        () => (ns ? core.listNamespacedSecret({ namespace: ns }) : core.listSecretForAllNamespaces()),
        'Secret',
      );
      this.configMaps.set(key, cm);
      this.secrets.set(key, secret);
    }
    await Promise.all(this.informers.map((i) => i.start()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  /** Called on every add, change and removal. */
  onChange(listener: (kind: SourceKind, namespace: string, name: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  configMap(namespace: string, name: string): V1ConfigMap | undefined {
    return this.cache(this.configMaps, namespace)?.get(name, namespace);
  }

  secret(namespace: string, name: string): V1Secret | undefined {
    return this.cache(this.secrets, namespace)?.get(name, namespace);
  }

  /** The bytes of one key, or undefined if the object or key is missing and `optional`. */
  key(kind: SourceKind, namespace: string, name: string, key: string, optional = false): Buffer | undefined {
    const all = this.entries(kind, namespace, name, optional);
    const value = all?.get(key);
    if (value === undefined && !optional) {
      throw new KubeletError(
        'CreateContainerConfigError',
        all
          ? `couldn't find key ${key} in ${kind} ${namespace}/${name}`
          : `${kind.toLowerCase()} "${name}" not found`,
      );
    }
    return value;
  }

  /** Every key of a ConfigMap (data and binaryData) or Secret, decoded; undefined if missing and optional. */
  entries(
    kind: SourceKind,
    namespace: string,
    name: string,
    optional = false,
  ): Map<string, Buffer> | undefined {
    const out = new Map<string, Buffer>();
    if (kind === 'ConfigMap') {
      const cm = this.configMap(namespace, name);
      if (!cm) return this.missing(kind, name, optional);
      for (const [k, v] of Object.entries(cm.data ?? {})) out.set(k, Buffer.from(v, 'utf8'));
      for (const [k, v] of Object.entries(cm.binaryData ?? {})) out.set(k, Buffer.from(v, 'base64'));
    } else {
      const secret = this.secret(namespace, name);
      if (!secret) return this.missing(kind, name, optional);
      for (const [k, v] of Object.entries(secret.data ?? {})) out.set(k, Buffer.from(v, 'base64'));
    }
    return out;
  }

  private missing(kind: SourceKind, name: string, optional: boolean): undefined {
    if (optional) return undefined;
    throw new KubeletError('CreateContainerConfigError', `${kind.toLowerCase()} "${name}" not found`);
  }

  private cache<T extends KubernetesObject>(map: Map<string, Watched<T>>, namespace: string) {
    return map.get(this.namespaces ? namespace : '');
  }

  private watch<T extends KubernetesObject>(
    path: string,
    list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>,
    kind: SourceKind,
  ): Watched<T> {
    const informer = makeInformer<T>(this.kc, path, list as never);
    const notify = (obj: T) => {
      for (const l of this.listeners) l(kind, obj.metadata?.namespace ?? '', obj.metadata?.name ?? '');
    };
    informer.on('add', notify);
    informer.on('update', notify);
    informer.on('delete', notify);
    // client-node's informer stops on an error; a kubelet keeps watching.
    informer.on('error', () => {
      if (!this.stopped)
        setTimeout(() => !this.stopped && void informer.start().catch(() => {}), RESTART_AFTER_ERROR_MS);
    });
    this.informers.push(informer as unknown as Watched<KubernetesObject>);
    return informer;
  }
}
