// A watched, cached kind: client-node's ListWatch per namespace in scope (or one cluster-wide), restarted with
// backoff when its watch fails, with the object seen before each change so mappers can enqueue old owners too.

import {
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface Resource {
  apiVersion: string;
  kind: string;
  /** The URL path segment: configmaps, functioninstances, … */
  plural: string;
}

export type ChangeType = 'add' | 'update' | 'delete';
export type ChangeHandler<T> = (obj: T, previous: T | undefined, type: ChangeType) => void;

/** Read access to a cache: what reconcilers see of the world. */
export interface ObjectCache<T> {
  get(namespace: string, name: string): T | undefined;
  /** All objects, or those of one namespace. */
  list(namespace?: string): readonly T[];
}

export interface InformerOptions {
  kc: KubeConfig;
  resource: Resource;
  /** Namespaces to watch; undefined watches all. */
  namespaces?: readonly string[];
  labelSelector?: string;
  fieldSelector?: string;
  log: Logger;
}

const BASE_RESTART_MS = 1000;
const MAX_RESTART_MS = 30_000;

export const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

function collectionPath(resource: Resource, namespace: string | undefined): string {
  const base = resource.apiVersion.includes('/')
    ? `/apis/${resource.apiVersion}`
    : `/api/${resource.apiVersion}`;
  return namespace ? `${base}/namespaces/${namespace}/${resource.plural}` : `${base}/${resource.plural}`;
}

export class Informer<T extends KubernetesObject> implements ObjectCache<T> {
  private readonly watches = new Map<string, ListWatch<T>>();
  private readonly handlers: ChangeHandler<T>[] = [];
  /** What each key looked like before its latest change (ListWatch passes only the new object). */
  private readonly seen = new Map<string, T>();
  private readonly restarts = new Map<string, NodeJS.Timeout>();
  private stopped = false;
  private syncedCount = 0;

  constructor(private readonly options: InformerOptions) {}

  get kind(): string {
    return this.options.resource.kind;
  }

  /** Every watch has listed once (the cache holds the world as of then). */
  get synced(): boolean {
    return this.syncedCount === (this.options.namespaces?.length ?? 1);
  }

  onChange(handler: ChangeHandler<T>): void {
    this.handlers.push(handler);
  }

  get(namespace: string, name: string): T | undefined {
    const watch = this.watches.get(this.options.namespaces ? namespace : '*');
    return watch?.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    if (namespace !== undefined) {
      const watch = this.watches.get(this.options.namespaces ? namespace : '*');
      return watch?.list(namespace) ?? [];
    }
    return [...this.watches.values()].flatMap((w) => w.list());
  }

  /** Starts every watch; resolves once each has listed (retrying failed lists with backoff). */
  async start(): Promise<void> {
    this.stopped = false;
    const scopes = this.options.namespaces ?? ['*'];
    await Promise.all(scopes.map((scope) => this.startScope(scope)));
  }

  private async startScope(scope: string): Promise<void> {
    const { kc, resource, labelSelector, fieldSelector, log } = this.options;
    const namespace = scope === '*' ? undefined : scope;
    const api = KubernetesObjectApi.makeApiClient(kc);
    const listFn = () =>
      api.list<T>(
        resource.apiVersion,
        resource.kind,
        namespace,
        undefined,
        undefined,
        undefined,
        fieldSelector,
        labelSelector,
      );
    const lw = new ListWatch<T>(
      collectionPath(resource, namespace),
      new Watch(kc),
      listFn,
      false,
      labelSelector,
      fieldSelector,
    );
    this.watches.set(scope, lw);
    lw.on('add', (obj) => this.changed(obj, 'add'));
    lw.on('update', (obj) => this.changed(obj, 'update'));
    lw.on('delete', (obj) => this.changed(obj, 'delete'));
    let failures = 0;
    let failed = false;
    let synced = false;
    const backoff = () => Math.min(MAX_RESTART_MS, BASE_RESTART_MS * 2 ** Math.min(failures - 1, 10));
    lw.on('connect', () => {
      failures = 0;
    });
    // ListWatch reports a failed list or watch and stops: restart it (it resumes from its resourceVersion).
    lw.on('error', (err) => {
      failed = true;
      if (this.stopped) return;
      failures++;
      log.warn(
        { kind: resource.kind, namespace: namespace ?? 'all', error: describe(err), retryInMs: backoff() },
        'watch failed; restarting',
      );
      if (!synced) return; // the first start below retries by itself
      clearTimeout(this.restarts.get(scope));
      const timer = setTimeout(() => {
        this.restarts.delete(scope);
        if (!this.stopped) void lw.start();
      }, backoff());
      timer.unref();
      this.restarts.set(scope, timer);
    });
    for (;;) {
      failed = false;
      await lw.start().catch((err) => {
        failed = true;
        failures++;
        log.warn({ kind: resource.kind, error: describe(err) }, 'list failed; retrying');
      });
      if (!failed || this.stopped) break;
      await new Promise((r) => setTimeout(r, backoff()));
    }
    synced = true;
    this.syncedCount++;
  }

  private changed(obj: T, type: ChangeType): void {
    const key = keyOf(obj);
    const previous = this.seen.get(key);
    if (type === 'delete') this.seen.delete(key);
    else this.seen.set(key, obj);
    for (const handler of this.handlers) handler(obj, previous, type);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.restarts.values()) clearTimeout(timer);
    this.restarts.clear();
    await Promise.all([...this.watches.values()].map((w) => w.stop()));
  }
}

export function describe(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && 'body' in err) {
    const body = (err as { body?: unknown }).body;
    const message =
      typeof body === 'string'
        ? body
        : ((body as { message?: string } | undefined)?.message ?? JSON.stringify(body));
    return `HTTP ${(err as { code: number }).code}: ${message}`;
  }
  return err instanceof Error ? err.message : String(err);
}
