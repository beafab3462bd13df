// `dfn replay <namespace>/<instance>`: re-publishes an instance's dead-lettered events for delivery to that
// instance only, with a fresh set of attempts, and says how many; replayed dead letters leave the stream.

import type { Command } from 'commander';
import { type InstanceRef, topology } from '../../api/jetstream.js';
import { replayDeadLetters } from '../../runner/dead-letters.js';
import { addNatsOptions, connectForCli, type NatsFlags, parseInstanceRef, runCli } from './nats-options.js';

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
    .argument('<namespace/instance>', 'the FunctionInstance, e.g. default/slack-alerts', parseInstanceRef)
    .option(
      '--message-id <id>',
      'replay only this event (repeat for several; default: every dead letter)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option('--keep', 'leave the replayed events in the dead-letter stream')
    .option('--dry-run', 'list what would be replayed; publish nothing')
    .option('--json', 'print the result as JSON');
  addNatsOptions(command)
    .addHelpText(
      'after',
      `
Dead letters are events whose delivery attempts ran out (see \`dfn deliveries\`). Replay
publishes each to the instance's replay subject, so other instances of the same source do
not receive it twice, and removes it from the dead-letter stream once NATS stored it (unless
--keep). The runner then delivers it with a full set of attempts; if it fails again it is
dead-lettered again. Replaying the same dead letter twice within the dedupe window (1 h)
delivers it once.

Exit status: 0 replayed (or nothing to replay), 1 NATS unreachable or a requested
--message-id is not dead-lettered, 2 usage error.

Examples:
  dfn replay default/slack-alerts
  dfn replay default/slack-alerts --message-id ajs-6f1c --message-id ajs-77a0
  dfn replay default/slack-alerts --dry-run`,
    )
    .action((ref: InstanceRef, flags: ReplayFlags) =>
      runCli('replay', async () => {
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
          if (flags.json) {
            process.stdout.write(
              `${JSON.stringify(
                {
                  instance: ref,
                  replayed: n,
                  dryRun: Boolean(flags.dryRun),
                  subject: result.subject,
                  messageIds: result.replayed.map((r) => r.deadLetter.event.messageId ?? null),
                  notFound: result.notFound,
                },
                null,
                2,
              )}\n`,
            );
          } else {
            const events = `${n} dead-lettered event${n === 1 ? '' : 's'}`;
            if (flags.dryRun) {
              process.stdout.write(`Would replay ${events} of ${name}:\n`);
              for (const r of result.replayed) {
                const e = r.deadLetter.event;
                process.stdout.write(
                  `  ${e.messageId ?? '(no messageId)'}  ${e.type}${e.event ? ` "${e.event}"` : ''}  ` +
                    `${r.deadLetter.lastError.errorType}: ${r.deadLetter.lastError.message}\n`,
                );
              }
            } else if (n === 0 && result.notFound.length === 0) {
              process.stdout.write(`No dead-lettered events for ${name}: nothing to replay.\n`);
            } else {
              process.stdout.write(
                `Replayed ${events} of ${name}` +
                  (n > 0
                    ? flags.keep
                      ? ' (kept in the dead-letter stream).\n'
                      : ' (removed from the dead-letter stream).\n'
                    : '.\n'),
              );
            }
            if (result.notFound.length) {
              process.stderr.write(`Not dead-lettered for ${name}: ${result.notFound.join(', ')}\n`);
            }
          }
          return result.notFound.length ? 1 : 0;
        } finally {
          await nc.close();
        }
      }),
    );
}
