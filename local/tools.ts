// Where the binaries of the local control plane are: a prebuilt directory named by DFN_KUBE_ASSETS or
// KUBEBUILDER_ASSETS first, then the version-keyed cache that scripts/kube-tools.sh fills.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type KubeBinary = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kubectl';

export class ToolNotFoundError extends Error {
  override readonly name = 'ToolNotFoundError';
  readonly code = 'DFN_TOOL_NOT_FOUND';
  constructor(
    readonly tool: string,
    readonly searched: string[],
  ) {
    super(`${tool} not found (looked in ${searched.join(', ')}): run \`npm run setup\` first`);
  }
}

/** The repository root: the nearest parent holding scripts/tools.env (from the sources or from dist/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'scripts', 'tools.env'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new ToolNotFoundError('scripts/tools.env', [fileURLToPath(import.meta.url)]);
    dir = parent;
  }
  return dir;
}

/** scripts/tools.env: the pinned versions and the default cache directory, the single source of both. */
export function toolsEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(repoRoot(), 'scripts/tools.env'), 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!.replace(/^"|"$/g, '').replace('$HOME', homedir());
  }
  return env;
}

export function toolsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DFN_TOOLS_DIR || toolsEnv().DFN_TOOLS_DIR_DEFAULT!;
}

/** A binary built by the set-up into `<tools dir>/<name>-<version>/`, e.g. nats-server or helm. */
export function cachedTool(name: string, versionKey: string, env: NodeJS.ProcessEnv = process.env): string {
  const path = join(toolsDir(env), `${name}-${toolsEnv()[versionKey]}`, name);
  if (!existsSync(path)) throw new ToolNotFoundError(name, [path]);
  return path;
}

/** One Kubernetes binary, resolved as scripts/kube-tools.sh decides what to build. */
export function kubeBinary(name: KubeBinary, env: NodeJS.ProcessEnv = process.env): string {
  const searched: string[] = [];
  const assets = env.DFN_KUBE_ASSETS || env.KUBEBUILDER_ASSETS;
  if (assets) {
    const path = join(assets, name);
    if (existsSync(path)) return path;
    searched.push(path);
  }
  const path = join(toolsDir(env), `kubernetes-${toolsEnv().KUBERNETES_VERSION}`, name);
  if (existsSync(path)) return path;
  throw new ToolNotFoundError(name, [...searched, path]);
}

export const helmBinary = (env: NodeJS.ProcessEnv = process.env) => cachedTool('helm', 'HELM_VERSION', env);
