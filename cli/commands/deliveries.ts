// `dfn deliveries -n <namespace> fi/<instance>`: an instance's recent failed deliveries, newest first, with the
// error, the function's logs and its request traces; read straight from the deliveries stream in NATS.

import { type Command, InvalidArgumentError } from 'commander';
import {
  DEFAULT_NATS_URL,
  DELIVERY_RECORD_MAX_BYTES,
  type DeliveryRecord,
  deadLetterSubject,
  type InstanceRef,
  MAX_CRASHES,
  topology,
} from '../../api/jetstream.js';
import { ERROR_TYPES } from '../../api/outcome.js';
import { readDeliveryRecords } from '../../runner/delivery-records.js';
import { countSubject } from '../../runner/stream-reader.js';
import { notTracedText } from '../not-traced.js';
import {
  addNamespaceOption,
  INSTANCE_ARGUMENT_HELP,
  instanceRef,
  natsUrlFor,
  parseInstanceArgument,
} from './instance-ref.js';
import { addNatsOptions, connectForCli, type NatsFlags, runCli } from './nats-options.js';

interface DeliveriesFlags extends NatsFlags {
  limit: number;
  messageId?: string;
  json?: boolean;
}

const DISPOSITION_TEXT: Record<DeliveryRecord['disposition'], string> = {
  retry: 'will be retried',
  discard: 'discarded',
  'dead-letter': 'dead-lettered',
};

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError('must be a whole number of at least 1.');
  return n;
}

/** What a record too large for NATS left out (api/jetstream.ts, DELIVERY_RECORD_MAX_BYTES). */
function omittedText(count: number, what: string): string {
  return `${count} more ${what}${count === 1 ? '' : 's'}, left out of this record to keep it within ${DELIVERY_RECORD_MAX_BYTES / 1024} KiB (and what NATS takes)`;
}

export function formatDeliveryRecord(r: DeliveryRecord): string {
  const label = ERROR_TYPES[r.errorType]?.label ?? r.errorType;
  const what = r.eventName ? `${r.eventType} "${r.eventName}"` : r.eventType;
  const lines = [
    `${r.at}  ${label}  ${DISPOSITION_TEXT[r.disposition] ?? r.disposition}${r.nextAttemptAt ? ` (next attempt ${r.nextAttemptAt})` : ''}`,
    `  event     ${what}, messageId ${r.messageId ?? '(none)'}${r.batch ? ', in an onBatch call' : ''}`,
    `  error     ${r.message}`,
    `  attempt   ${r.attempt} of ${r.maxAttempts}${r.crashes ? `, crashes ${r.crashes} (${MAX_CRASHES} allowed)` : ''}, ${r.durationMs} ms, revision ${r.revision}, replica ${r.replica}`,
  ];
  if (r.logs.length || r.logsOmitted) {
    lines.push('  logs');
    for (const log of r.logs) lines.push(...log.split('\n').map((l) => `    ${l}`));
    if (r.logsOmitted) lines.push(`    … and ${omittedText(r.logsOmitted, 'log line')}`);
  }
  if (r.requests.length || r.requestsOmitted) {
    lines.push('  requests');
    for (const q of r.requests) {
      const result = q.status ? String(q.status) : `failed${q.error ? `: ${q.error}` : ''}`;
      lines.push(`    ${q.method} ${q.url} → ${result} (${q.durationMs} ms)`);
    }
    if (r.requestsOmitted) lines.push(`    … and ${omittedText(r.requestsOmitted, 'traced request')}`);
  }
  if (r.requestsNotTraced) lines.push(`    … and ${notTracedText(r.requestsNotTraced)}`);
  return lines.join('\n');
}

export function registerDeliveriesCommand(program: Command): void {
  const command = program
    .command('deliveries')
    .description("Show a FunctionInstance's recent failed deliveries: error, logs and request traces.")
    .argument('<instance>', INSTANCE_ARGUMENT_HELP, parseInstanceArgument)
    .option('--limit <n>', 'show at most this many, newest first', positiveInt, 20)
    .option('--message-id <id>', "only the attempts of this event's messageId")
    .option('--json', 'print the records as a JSON array');
  addNatsOptions(addNamespaceOption(command))
    .addHelpText(
      'after',
      `
Each failed attempt of an event is one record: retried, discarded (Bad Request, Message
Rejected, Unsupported Event Type, Invalid Settings) or dead-lettered after the last attempt.
Crashed: the event was in flight when its sandbox or runner died; it is delivered again
without using an attempt, and dead-lettered once it has crashed ${MAX_CRASHES} times.
Records are kept per instance in NATS (the most recent 200 by default); sensitive settings
are redacted. A record is at most ${DELIVERY_RECORD_MAX_BYTES / 1024} KiB (less when the NATS server takes less): a
larger one keeps its error and the first log lines and requests that fit, and says how many
it left out. Dead-lettered events can be sent again with \`dfn replay\`.

Exit status: 0 shown (even if none), 1 NATS unreachable, 2 usage error.

NATS: --nats-url, else DFN_NATS_URL or NATS_URL, else that of a running \`dfn up\`, else
${DEFAULT_NATS_URL}.

Examples:
  dfn deliveries fi/slack-alerts
  dfn deliveries -n shop functioninstance/orders-to-crm --limit 5
  dfn deliveries default/slack-alerts --message-id ajs-6f1c --json
  DFN_NATS_URL=nats://nats.dfn-system:4222 dfn deliveries shop/orders-to-crm`,
    )
    .action((argument: string, cliFlags: DeliveriesFlags & { namespace?: string }) =>
      runCli('deliveries', async () => {
        const ref: InstanceRef = instanceRef(argument, cliFlags.namespace);
        const flags = natsUrlFor(command, cliFlags) as DeliveriesFlags;
        const nc = await connectForCli(flags);
        try {
          const t = topology(flags.prefix);
          const jsm = await nc.jetstreamManager();
          let records = await readDeliveryRecords(jsm, t, ref);
          if (flags.messageId) records = records.filter((r) => r.messageId === flags.messageId);
          const shown = records.slice(0, flags.limit);
          if (flags.json) {
            process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
            return 0;
          }
          const dead = await countSubject(jsm, t.deadLetterStream, deadLetterSubject(t, ref)).catch(() => 0);
          const name = `${ref.namespace}/${ref.name}`;
          if (shown.length === 0) {
            process.stdout.write(
              `No failed deliveries recorded for ${name}${flags.messageId ? ` with messageId ${flags.messageId}` : ''}.\n`,
            );
          } else {
            process.stdout.write(
              `Failed deliveries of ${name}, newest first (${shown.length} of ${records.length}):\n\n` +
                `${shown.map(formatDeliveryRecord).join('\n\n')}\n`,
            );
          }
          if (dead > 0) {
            process.stdout.write(
              `\n${dead} event${dead === 1 ? ' is' : 's are'} dead-lettered: \`dfn replay ${name}\` sends ${dead === 1 ? 'it' : 'them'} again.\n`,
            );
          }
          return 0;
        } finally {
          await nc.close();
        }
      }),
    );
}
