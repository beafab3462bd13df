// Flags shared by the commands that talk to NATS directly (`dfn deliveries`, `dfn replay`): where NATS is,
// how to authenticate, which install (prefix).

import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { type ConnectionOptions, connect, type NatsConnection } from 'nats';
import { DEFAULT_NATS_URL, topology } from '../../api/jetstream.js';
import { displayServers, natsUrlCredentials } from '../../lib/nats-url.js';
import { type NatsAuth, secretValue } from '../../runner/config-loader.js';
import { authOptions } from '../../runner/nats-connection.js';

export interface NatsFlags {
  natsUrl: string;
  natsCreds?: string;
  natsTokenFile?: string;
  natsUser?: string;
  natsPasswordFile?: string;
  prefix: string;
}

/** A wrong combination of flags: exit status 2, like commander's own usage errors. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
  readonly code = 'DFN_CLI_USAGE';
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
      '--nats-token-file <file>',
      'file holding a NATS auth token (env DFN_NATS_TOKEN_FILE)',
      process.env.DFN_NATS_TOKEN_FILE,
    )
    .option(
      '--nats-user <name>',
      'NATS user; needs --nats-password-file (env DFN_NATS_USER)',
      process.env.DFN_NATS_USER,
    )
    .option(
      '--nats-password-file <file>',
      'file holding the password of --nats-user (env DFN_NATS_PASSWORD_FILE)',
      process.env.DFN_NATS_PASSWORD_FILE,
    )
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

function readFlagFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

/** The same three credential forms as a runner config directory, each read from a file. */
export function cliNatsAuth(flags: NatsFlags): NatsAuth {
  const forms = [
    flags.natsCreds && '--nats-creds',
    flags.natsTokenFile && '--nats-token-file',
    flags.natsUser && '--nats-user',
  ].filter(Boolean);
  if (forms.length > 1) throw new CliUsageError(`use only one of ${forms.join(', ')}`);
  if (flags.natsUser && !flags.natsPasswordFile)
    throw new CliUsageError('--nats-user needs --nats-password-file');
  if (flags.natsPasswordFile && !flags.natsUser)
    throw new CliUsageError('--nats-password-file needs --nats-user');
  if (flags.natsCreds) return { creds: new Uint8Array(readFlagFile('--nats-creds', flags.natsCreds)) };
  if (flags.natsTokenFile) {
    return { token: secretValue(readFlagFile('--nats-token-file', flags.natsTokenFile).toString('utf8')) };
  }
  if (flags.natsUser) {
    const pass = secretValue(readFlagFile('--nats-password-file', flags.natsPasswordFile!).toString('utf8'));
    return { user: flags.natsUser, pass };
  }
  return {};
}

/** One connection attempt with a short timeout: a CLI should say quickly that NATS is not there. */
export async function connectForCli(flags: NatsFlags): Promise<NatsConnection> {
  const options: ConnectionOptions = {
    ...natsUrlCredentials(flags.natsUrl),
    ...authOptions(cliNatsAuth(flags)),
    timeout: 5000,
    reconnect: false,
    name: 'dfn cli',
  };
  try {
    return await connect(options);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const reason =
      code === 'CONNECTION_REFUSED'
        ? 'connection refused'
        : code === 'AUTHORIZATION_VIOLATION'
          ? 'authorization violation: the server refused the credentials'
          : (err as Error).message;
    throw new Error(`cannot reach NATS at ${displayServers(flags.natsUrl)} (--nats-url): ${reason}`);
  }
}

/** Runs a command body, printing its error and setting exit status 1 (runtime failure, 2 usage) if it throws. */
export async function runCli(name: string, body: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await body();
  } catch (err) {
    process.stderr.write(`dfn ${name}: ${(err as Error).message}\n`);
    process.exitCode = err instanceof CliUsageError ? 2 : 1;
  }
}
