// `dfn replay -n <namespace> fi/<instance>`: re-publishes an instance's dead-lettered events for delivery to that
// instance only, with a fresh set of attempts, and says how many; replayed dead letters leave the stream.

import type { Command } from 'commander';
import { DEFAULT_NATS_URL, type InstanceRef, topology } from '../../api/jetstream.js';
import { replayDeadLetters, type StoredDeadLetter } from '../../runner/dead-letters.js';
import {
  addNamespaceOption,
  INSTANCE_ARGUMENT_HELP,
  instanceRef,
  natsUrlFor,
  parseInstanceArgument,
} from './instance-ref.js';
import { addNatsOptions, connectForCli, type NatsFlags, runCli } from './nats-options.js';

interface ReplayFlags extends NatsFlags {
  messageId?: string[];
  keep?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export function registerReplayCommand(program: Command): void {
  const command = program
    .command('replay')
    .description("Send a FunctionInstance's dead-lettered events again, to that instance only.")
    .argument('<instance>', INSTANCE_ARGUMENT_HELP, parseInstanceArgument)
    .option(
      '--message-id <id>',
      'replay only this event (repeat for several; default: every dead letter)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option('--keep', 'leave the replayed events in the dead-letter stream')
    .option('--dry-run', 'list what would be replayed; publish nothing')
    .option('--json', 'print the result as JSON');
  addNatsOptions(addNamespaceOption(command))
    .addHelpText(
      'after',
      `
Dead letters are events whose delivery attempts ran out (see \`dfn deliveries\`). Replay
publishes each to the instance's replay subject, so other instances of the same source do
not receive it twice, and removes it from the dead-letter stream once NATS stored it (unless
--keep). The runner then delivers it with a full set of attempts; if it fails again it is
dead-lettered again. Replaying the same dead letter twice within the dedupe window (1 h)
delivers it once.

Every dead letter selected is replayed once in one run, however many there are; only those
stored when the run began are read, so an event that fails again meanwhile waits for the next
run. The counts add up: replayed + not replayed = selected.

Exit status: 0 every selected dead letter replayed (or nothing to replay), 1 NATS
unreachable, a publish or removal failed, or a requested --message-id is not
dead-lettered, 2 usage error.

NATS: --nats-url, else DFN_NATS_URL or NATS_URL, else that of a running \`dfn up\`, else
${DEFAULT_NATS_URL}.

Examples:
  dfn replay fi/slack-alerts
  dfn replay -n shop functioninstance/orders-to-crm
  dfn replay default/slack-alerts
  dfn replay default/slack-alerts --message-id ajs-6f1c --message-id ajs-77a0
  dfn replay default/slack-alerts --dry-run`,
    )
    .action((argument: string, cliFlags: ReplayFlags & { namespace?: string }) =>
      runCli('replay', async () => {
        const ref: InstanceRef = instanceRef(argument, cliFlags.namespace);
        const flags = natsUrlFor(command, cliFlags) as ReplayFlags;
        const nc = await connectForCli(flags);
        try {
          const t = topology(flags.prefix);
          const result = await replayDeadLetters(nc.jetstream(), await nc.jetstreamManager(), t, ref, {
            ...(flags.messageId ? { messageIds: flags.messageId } : {}),
            ...(flags.keep ? { keep: true } : {}),
            ...(flags.dryRun ? { dryRun: true } : {}),
          });
          const name = `${ref.namespace}/${ref.name}`;
          const n = result.replayed.length;
          const idOf = (stored: StoredDeadLetter) => stored.deadLetter.event.messageId ?? null;
          if (flags.json) {
            process.stdout.write(
              `${JSON.stringify(
                {
                  instance: ref,
                  dryRun: Boolean(flags.dryRun),
                  subject: result.subject,
                  selected: result.selected,
                  replayed: n,
                  failed: result.failed.length,
                  notRemoved: result.notRemoved.length,
                  messageIds: result.replayed.map(idOf),
                  failures: result.failed.map((f) => ({ messageId: idOf(f.stored), error: f.error })),
                  notFound: result.notFound,
                },
                null,
                2,
              )}\n`,
            );
          } else {
            const events = (k: number) => `${k} dead-lettered event${k === 1 ? '' : 's'}`;
            if (flags.dryRun) {
              process.stdout.write(`Would replay ${events(n)} of ${name}:\n`);
              for (const r of result.replayed) {
                const e = r.deadLetter.event;
                process.stdout.write(
                  `  ${e.messageId ?? '(no messageId)'}  ${e.type}${e.event ? ` "${e.event}"` : ''}  ` +
                    `${r.deadLetter.lastError.errorType}: ${r.deadLetter.lastError.message}\n`,
                );
              }
            } else if (result.selected === 0 && result.notFound.length === 0) {
              process.stdout.write(`No dead-lettered events for ${name}: nothing to replay.\n`);
            } else {
              const where =
                n === 0
                  ? ''
                  : flags.keep
                    ? ' (kept in the dead-letter stream)'
                    : ' (removed from the dead-letter stream)';
              process.stdout.write(
                `Replayed ${n} of ${events(result.selected)} selected for ${name}${where}.\n`,
              );
            }
            if (flags.messageId && !flags.dryRun) {
              const requested = new Set(flags.messageId).size;
              process.stdout.write(
                `Requested ${requested} messageId${requested === 1 ? '' : 's'}: ` +
                  `${requested - result.notFound.length} dead-lettered, ${result.notFound.length} not.\n`,
              );
            }
            for (const f of result.failed) {
              process.stderr.write(`Not replayed: ${idOf(f.stored) ?? '(no messageId)'}: ${f.error}\n`);
            }
            if (result.notRemoved.length) {
              process.stderr.write(
                `Replayed but still in the dead-letter stream (removal failed): ${result.notRemoved.map(idOf).join(', ')}\n`,
              );
            }
            if (result.notFound.length) {
              process.stderr.write(`Not dead-lettered for ${name}: ${result.notFound.join(', ')}\n`);
            }
          }
          return result.failed.length || result.notFound.length || result.notRemoved.length ? 1 : 0;
        } finally {
          await nc.close();
        }
      }),
    );
}
