// Flags shared by the commands that talk to NATS directly (`dfn deliveries`, `dfn replay`): where NATS is,
// how to authenticate, which install (prefix), and the `<namespace>/<instance>` argument they act on.

import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { type ConnectionOptions, connect, credsAuthenticator, type NatsConnection } from 'nats';
import { DEFAULT_NATS_URL, type InstanceRef, subjectToken, topology } from '../../api/jetstream.js';
import { displayServers, natsUrlCredentials } from '../../lib/nats-url.js';

export interface NatsFlags {
  natsUrl: string;
  natsCreds?: string;
  prefix: string;
}

export function addNatsOptions(command: Command): Command {
  return command
    .option(
      '--nats-url <url>',
      'NATS server URL(s), comma-separated (env DFN_NATS_URL, NATS_URL)',
      process.env.DFN_NATS_URL || process.env.NATS_URL || DEFAULT_NATS_URL,
    )
    .option('--nats-creds <file>', 'NATS credentials (.creds) file (env NATS_CREDS)', process.env.NATS_CREDS)
    .option(
      '--prefix <prefix>',
      'subject prefix of the install (env DFN_PREFIX)',
      parsePrefix,
      process.env.DFN_PREFIX || 'dfn',
    );
}

/** A --prefix value, checked as the JetStream topology checks it. */
export function parsePrefix(value: string): string {
  try {
    topology(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

/** `<namespace>/<instance>` as commander argument parser. */
export function parseInstanceRef(value: string): InstanceRef {
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(value);
  if (!m)
    throw new InvalidArgumentError(
      `expected <namespace>/<instance>, e.g. default/slack-alerts (got "${value}").`,
    );
  const ref = { namespace: m[1]!, name: m[2]! };
  try {
    subjectToken(ref.namespace);
    subjectToken(ref.name);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return ref;
}

/** One connection attempt with a short timeout: a CLI should say quickly that NATS is not there. */
export async function connectForCli(flags: NatsFlags): Promise<NatsConnection> {
  const options: ConnectionOptions = {
    ...natsUrlCredentials(flags.natsUrl),
    timeout: 5000,
    reconnect: false,
    name: 'dfn cli',
  };
  if (flags.natsCreds) {
    let creds: Uint8Array;
    try {
      creds = new Uint8Array(readFileSync(flags.natsCreds));
    } catch (err) {
      throw new Error(
        `cannot read --nats-creds ${flags.natsCreds}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
    options.authenticator = credsAuthenticator(creds);
  }
  try {
    return await connect(options);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const reason = code === 'CONNECTION_REFUSED' ? 'connection refused' : (err as Error).message;
    throw new Error(`cannot reach NATS at ${displayServers(flags.natsUrl)} (--nats-url): ${reason}`);
  }
}

/** Runs a command body, printing its error and setting exit status 1 (runtime failure) if it throws. */
export async function runCli(name: string, body: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await body();
  } catch (err) {
    process.stderr.write(`dfn ${name}: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
