// A Pod's volumes as files under its private root: ConfigMap, Secret, projected (service-account token,
// CA, downward API) and emptyDir, written as a kubelet's atomic writer does, so updates are never half-seen.

import { createHash, randomBytes } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import {
  CoreV1Api,
  type KubeConfig,
  type V1KeyToPath,
  type V1Pod,
  type V1Volume,
  type V1VolumeMount,
} from '@kubernetes/client-node';
import { fieldValue, resourceValue } from './downward.js';
import { KubeletError } from './errors.js';
import type { SourceKind, Sources } from './sources.js';

/** What a volume holds: relative file path → content and mode. */
export type Payload = Map<string, { data: Buffer; mode: number }>;

const DEFAULT_MODE = 0o644;
const DATA_LINK = '..data';

/** `path` inside `root`, refusing anything that would climb out of it. */
export function inside(root: string, path: string): string {
  const full = normalize(join(root, path));
  if (full !== root && !full.startsWith(root.endsWith(sep) ? root : root + sep)) {
    throw new KubeletError('CreateContainerConfigError', `path ${path} leaves the Pod's root`);
  }
  return full;
}

/** Service-account tokens from the TokenRequest API, bound to their Pod and renewed at 80% of their life. */
export class ServiceAccountTokens {
  private readonly cache = new Map<string, { token: string; refreshAt: number }>();

  constructor(private readonly kc: KubeConfig) {}

  async token(pod: V1Pod, audience: string | undefined, expirationSeconds: number): Promise<string> {
    const key = `${pod.metadata!.uid}/${audience ?? ''}/${expirationSeconds}`;
    const cached = this.cache.get(key);
    if (cached && Date.now() < cached.refreshAt) return cached.token;
    const issued = Date.now();
    const response = await this.kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      name: pod.spec?.serviceAccountName || 'default',
      namespace: pod.metadata!.namespace!,
      body: {
        spec: {
          audiences: audience ? [audience] : [],
          expirationSeconds,
          boundObjectRef: {
            apiVersion: 'v1',
            kind: 'Pod',
            name: pod.metadata!.name!,
            uid: pod.metadata!.uid!,
          },
        },
      },
    });
    const expires = response.status?.expirationTimestamp
      ? new Date(response.status.expirationTimestamp).getTime()
      : issued + expirationSeconds * 1000;
    const token = response.status?.token;
    if (!token) throw new KubeletError('CreateContainerConfigError', 'TokenRequest returned no token');
    this.cache.set(key, { token, refreshAt: issued + 0.8 * (expires - issued) });
    return token;
  }

  /** The earliest time a cached token of this Pod wants renewing. */
  nextRefresh(podUid: string): number | undefined {
    let next: number | undefined;
    for (const [key, v] of this.cache)
      if (key.startsWith(`${podUid}/`)) next = Math.min(next ?? v.refreshAt, v.refreshAt);
    return next;
  }

  forget(podUid: string): void {
    for (const key of this.cache.keys()) if (key.startsWith(`${podUid}/`)) this.cache.delete(key);
  }
}

export interface VolumeContext {
  sources: Sources;
  tokens: ServiceAccountTokens;
}

function keyed(
  ctx: VolumeContext,
  kind: SourceKind,
  pod: V1Pod,
  name: string,
  items: V1KeyToPath[] | undefined,
  optional: boolean,
  defaultMode: number,
  out: Payload,
): void {
  const entries = ctx.sources.entries(kind, pod.metadata!.namespace!, name, optional);
  if (!entries) return;
  if (!items?.length) {
    for (const [key, data] of entries) out.set(key, { data, mode: defaultMode });
    return;
  }
  for (const item of items) {
    const data = entries.get(item.key);
    if (data === undefined) {
      if (optional) continue;
      throw new KubeletError(
        'CreateContainerConfigError',
        `couldn't find key ${item.key} in ${kind} ${name}`,
      );
    }
    out.set(item.path, { data, mode: item.mode ?? defaultMode });
  }
}

/** The files of one volume; undefined for an emptyDir (a plain shared directory). */
export async function volumePayload(
  pod: V1Pod,
  volume: V1Volume,
  ctx: VolumeContext,
): Promise<Payload | undefined> {
  const out: Payload = new Map();
  if (volume.emptyDir) return undefined;
  if (volume.configMap) {
    const v = volume.configMap;
    keyed(ctx, 'ConfigMap', pod, v.name!, v.items, v.optional ?? false, v.defaultMode ?? DEFAULT_MODE, out);
  } else if (volume.secret) {
    const v = volume.secret;
    keyed(
      ctx,
      'Secret',
      pod,
      v.secretName!,
      v.items,
      v.optional ?? false,
      v.defaultMode ?? DEFAULT_MODE,
      out,
    );
  } else if (volume.downwardAPI) {
    for (const item of volume.downwardAPI.items ?? []) {
      const value = item.fieldRef
        ? fieldValue(pod, item.fieldRef)
        : resourceValue(pod, item.resourceFieldRef!);
      out.set(item.path, {
        data: Buffer.from(value),
        mode: item.mode ?? volume.downwardAPI.defaultMode ?? DEFAULT_MODE,
      });
    }
  } else if (volume.projected) {
    const mode = volume.projected.defaultMode ?? DEFAULT_MODE;
    for (const source of volume.projected.sources ?? []) {
      if (source.configMap) {
        const s = source.configMap;
        keyed(ctx, 'ConfigMap', pod, s.name!, s.items, s.optional ?? false, mode, out);
      } else if (source.secret) {
        const s = source.secret;
        keyed(ctx, 'Secret', pod, s.name!, s.items, s.optional ?? false, mode, out);
      } else if (source.downwardAPI) {
        for (const item of source.downwardAPI.items ?? []) {
          const value = item.fieldRef
            ? fieldValue(pod, item.fieldRef)
            : resourceValue(pod, item.resourceFieldRef!);
          out.set(item.path, { data: Buffer.from(value), mode: item.mode ?? mode });
        }
      } else if (source.serviceAccountToken) {
        const t = source.serviceAccountToken;
        const token = await ctx.tokens.token(pod, t.audience, t.expirationSeconds ?? 3600);
        // A token is a credential: readable by its owner only, whatever the volume's mode says.
        out.set(t.path, { data: Buffer.from(token), mode: 0o600 });
      } else {
        throw new KubeletError('UnsupportedVolume', `volume ${volume.name}: unsupported projected source`);
      }
    }
  } else {
    const type = Object.keys(volume).find((k) => k !== 'name') ?? 'unknown';
    throw new KubeletError(
      'UnsupportedVolume',
      `volume ${volume.name}: ${type} volumes cannot be run by the local kubelet`,
    );
  }
  return out;
}

function digest(payload: Payload): string {
  const hash = createHash('sha256');
  for (const [path, { data, mode }] of [...payload].sort(([a], [b]) => (a < b ? -1 : 1))) {
    hash.update(`${path}\0${mode}\0${data.length}\0`).update(data);
  }
  return hash.digest('hex');
}

async function isSymlink(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined))?.isSymbolicLink() ?? false;
}

/**
 * Writes `payload` into `dir` as Kubernetes' atomic writer does: the files go into a fresh hidden
 * directory, `..data` is switched to it by one rename, and each top-level name is a symlink through
 * `..data`. A reader sees the old set or the new one, never a mix. Returns whether anything changed.
 */
export async function writeAtomically(dir: string, payload: Payload): Promise<boolean> {
  await mkdir(dir, { recursive: true });
  const stamp = join(dir, '..digest');
  const wanted = digest(payload);
  if ((await readFile(stamp, 'utf8').catch(() => '')) === wanted && (await isSymlink(join(dir, DATA_LINK)))) {
    return false;
  }
  const previous = (await isSymlink(join(dir, DATA_LINK))) ? await readlink(join(dir, DATA_LINK)) : undefined;
  const version = `..${new Date().toISOString().replace(/[-:.]/g, '_')}.${randomBytes(4).toString('hex')}`;
  for (const [path, { data, mode }] of payload) {
    const file = inside(join(dir, version), path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, data, { mode });
    await chmod(file, mode);
  }
  await mkdir(join(dir, version), { recursive: true });
  const tmpLink = join(dir, `${DATA_LINK}_tmp`);
  await rm(tmpLink, { force: true });
  await symlink(version, tmpLink);
  await rename(tmpLink, join(dir, DATA_LINK));
  const top = new Set([...payload.keys()].map((p) => p.split('/')[0]!));
  for (const name of top) {
    const link = join(dir, name);
    if (!(await isSymlink(link))) {
      await rm(link, { recursive: true, force: true });
      await symlink(join(DATA_LINK, name), link);
    }
  }
  // Names the previous payload had and this one has not: only our own links, never a nested mount.
  for (const name of await readdir(dir)) {
    if (name.startsWith('..') || top.has(name)) continue;
    const link = join(dir, name);
    if ((await isSymlink(link)) && (await readlink(link)).startsWith(`${DATA_LINK}${sep}`)) await rm(link);
  }
  if (previous && previous !== version) await rm(join(dir, previous), { recursive: true, force: true });
  await writeFile(stamp, wanted);
  return true;
}

/** One container mount, materialised at `<root><mountPath>`. */
export async function mount(
  root: string,
  podDir: string,
  volumeMount: V1VolumeMount,
  payload: Payload | undefined,
  initial: boolean,
): Promise<boolean> {
  const target = inside(root, volumeMount.mountPath);
  if (payload === undefined) {
    // emptyDir: one directory per Pod, shared by the containers that mount it.
    const dir = inside(join(podDir, 'volumes'), volumeMount.name);
    await mkdir(dir, { recursive: true });
    const source = volumeMount.subPath ? inside(dir, volumeMount.subPath) : dir;
    await mkdir(source, { recursive: true });
    if (!(await isSymlink(target))) {
      await mkdir(dirname(target), { recursive: true });
      await rm(target, { recursive: true, force: true });
      await symlink(source, target);
    }
    return false;
  }
  if (volumeMount.subPath) {
    // As in Kubernetes, a subPath mount is a copy taken at start and never updated.
    if (!initial) return false;
    const entry = payload.get(volumeMount.subPath);
    if (!entry)
      throw new KubeletError(
        'CreateContainerConfigError',
        `subPath ${volumeMount.subPath} not in volume ${volumeMount.name}`,
      );
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, entry.data, { mode: entry.mode });
    return true;
  }
  return writeAtomically(target, payload);
}
