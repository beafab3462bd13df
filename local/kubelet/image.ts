// Which images this kubelet can run: the dfn image only (one image, subcommands `dfn runner`, `dfn gateway`,
// `dfn operator`), mapped to the local dfn build. Nothing else is ever executed.

import type { V1Container } from '@kubernetes/client-node';
import { KubeletError } from './errors.js';

export interface ImageMapping {
  /** Repositories that name the dfn image, e.g. `ghcr.io/acme/dfn` (any tag or digest). */
  repositories: readonly string[];
  /** What runs for the image's entrypoint `dfn`: e.g. [node, --no-node-snapshot, bin/dfn.js]. */
  dfn: readonly string[];
}

/** The repository of an image reference, normalised as Docker does (`dfn` = `docker.io/library/dfn`). */
export function repositoryOf(image: string): string {
  let ref = image.split('@')[0]!;
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > lastSlash) ref = ref.slice(0, colon);
  return ref.replace(/^(docker\.io|index\.docker\.io)\//, '').replace(/^library\//, '');
}

export function isDfnImage(mapping: ImageMapping, image: string | undefined): boolean {
  if (!image) return false;
  const repo = repositoryOf(image);
  return mapping.repositories.some((r) => repositoryOf(r) === repo);
}

/**
 * The argv to run for a container of the dfn image: its entrypoint is `dfn`, so `args` alone run
 * `dfn <args>`; a `command` must start with dfn itself (e.g. [dfn, gateway] or [/usr/local/bin/dfn]).
 */
export function commandFor(
  mapping: ImageMapping,
  container: V1Container,
  expand: (s: string) => string,
): string[] {
  const command = (container.command ?? []).map(expand);
  const args = (container.args ?? []).map(expand);
  if (command.length === 0) return [...mapping.dfn, ...args];
  if (command[0]!.split('/').pop() !== 'dfn') {
    throw new KubeletError(
      'StartError',
      `"${command[0]}" is not in the dfn image here: the local kubelet runs only dfn and its subcommands`,
    );
  }
  return [...mapping.dfn, ...command.slice(1), ...args];
}
