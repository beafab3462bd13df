// Which FunctionInstance a command acts on, named as kubectl names it (`-n shop fi/orders`,
// `functioninstance/orders`) or as `<namespace>/<instance>`; and, unless told, the NATS of a running `dfn up`.

import { type Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_NATS_URL, type InstanceRef, subjectToken } from '../../api/jetstream.js';
import { readRunningStack } from '../../local/up/running-stack.js';
import { CliUsageError, type NatsFlags } from './nats-options.js';

/** Resource names kubectl accepts for FunctionInstances (short name, singular, plural, with the group). */
const KIND_NAMES = new Set(
  ['fi', 'functioninstance', 'functioninstances'].flatMap((n) => [n, `${n}.dfn.dev`]),
);

export const INSTANCE_ARGUMENT_HELP =
  'the FunctionInstance: fi/NAME or functioninstance/NAME (with -n NAMESPACE), or NAMESPACE/NAME';

/** The argument as written; resolved with the namespace flag by instanceRef(). */
export function parseInstanceArgument(value: string): string {
  if (!/^[^/\s]+(\/[^/\s]+)?$/.test(value)) {
    throw new InvalidArgumentError(
      `expected fi/NAME, functioninstance/NAME or NAMESPACE/NAME, e.g. -n shop fi/orders (got "${value}").`,
    );
  }
  return value;
}

export function addNamespaceOption(command: Command): Command {
  return command.addOption(
    new Option('-n, --namespace <namespace>', "the instance's namespace (for fi/NAME; default: default)"),
  );
}

/**
 * `fi/NAME` (any kind name kubectl takes) or a bare NAME: in --namespace (default "default");
 * `NAMESPACE/NAME`: that namespace, which --namespace may repeat but not contradict.
 */
export function instanceRef(argument: string, namespaceFlag: string | undefined): InstanceRef {
  const slash = argument.indexOf('/');
  const head = slash < 0 ? undefined : argument.slice(0, slash);
  const name = slash < 0 ? argument : argument.slice(slash + 1);
  let namespace: string;
  if (head === undefined || KIND_NAMES.has(head.toLowerCase())) {
    namespace = namespaceFlag ?? 'default';
  } else {
    if (head.includes('.')) {
      throw new CliUsageError(`"${head}" is not a FunctionInstance kind: use fi/NAME or NAMESPACE/NAME`);
    }
    if (namespaceFlag !== undefined && namespaceFlag !== head) {
      throw new CliUsageError(`${argument} is in namespace ${head}, but --namespace says ${namespaceFlag}`);
    }
    namespace = head;
  }
  try {
    subjectToken(namespace);
    subjectToken(name);
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
  return { namespace, name };
}

/**
 * The NATS URL to use: --nats-url or DFN_NATS_URL/NATS_URL when given, else that of a running `dfn up`,
 * else the default. Says where it came from, for error messages.
 */
export function natsUrlFor(
  command: Command,
  flags: NatsFlags,
  env: NodeJS.ProcessEnv = process.env,
): NatsFlags {
  const explicit =
    command.getOptionValueSource('natsUrl') !== 'default' || Boolean(env.DFN_NATS_URL || env.NATS_URL);
  if (explicit) return flags;
  const stack = readRunningStack(env);
  return { ...flags, natsUrl: stack?.natsUrl ?? DEFAULT_NATS_URL };
}
