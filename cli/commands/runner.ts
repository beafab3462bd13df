// `dfn runner`: runs one FunctionInstance's function over its JetStream consumer, from a config directory.
// The directory's layout and schema are api/runner-config.ts; `--explain` prints its field reference.

import type { Command } from 'commander';
import {
  RUNNER_CONFIG_API_VERSION,
  RUNNER_CONFIG_FILES,
  runnerConfigReference,
} from '../../api/runner-config.js';

const F = RUNNER_CONFIG_FILES;

const HELP_AFTER = `
The config directory (one file per key, so Kubernetes can mount it from ConfigMaps and a Secret):
  ${F.config.padEnd(16)} RunnerConfig: instance, NATS, filters, batching, retry, limits (required)
  ${F.function.padEnd(16)} the function's code, plain script with onTrack, onBatch, … (required)
  ${F.settings.padEnd(16)} settings as one JSON object (optional)
  ${`${F.secrets}/<name>`.padEnd(16)} one file per sensitive setting; redacted from logs, records, traces

Minimal ${F.config}:
  apiVersion: ${RUNNER_CONFIG_API_VERSION}
  kind: RunnerConfig
  instance: { namespace: default, name: slack-alerts, source: web }
  function: { revision: "1" }
  nats: { url: nats://127.0.0.1:4222, ensureTopology: true }

Delivery: success acks; RetryError, timeouts and 429/5xx batch results are retried with
randomized exponential backoff (10 attempts over ~4 h by default), then dead-lettered
(see \`dfn replay\`); other errors are discarded. Failures are recorded (\`dfn deliveries\`).
A retry waits as a NATS message schedule, holding no consumer slot; its attempt number
travels with it, so restarts neither repeat nor skip attempts. An event in flight when its
runner or sandbox dies is delivered again without using an attempt; at its third crash
it is dead-lettered as Crashed.

Signals: SIGTERM or SIGINT stops pulling, lets in-flight events finish within
shutdown.gracePeriodMs (the rest go back to NATS at once, at no cost to them), flushes
stats and exits 0.

Exit status: 0 stopped cleanly (or --check passed), 1 NATS unreachable or another runtime
failure, 2 usage error or invalid config directory (nothing is consumed).

Examples:
  dfn runner --config ./my-instance
  dfn runner --config ./my-instance --check
  dfn runner --explain
`;

interface RunnerFlags {
  config?: string;
  replica?: string;
  check?: boolean;
  explain?: boolean;
}

export function registerRunnerCommand(program: Command): void {
  program
    .command('runner')
    .description("Deliver a FunctionInstance's events: consume its JetStream consumer and run its function.")
    .option('-c, --config <dir>', 'runner config directory (env DFN_RUNNER_CONFIG)')
    .option(
      '--replica <name>',
      'replica name in stats and delivery records (env DFN_REPLICA, POD_NAME; default hostname)',
    )
    .option('--check', 'validate the config directory and load the function, then exit')
    .option('--explain', `print the ${F.config} field reference and exit`)
    .addHelpText('after', HELP_AFTER)
    .action(async (flags: RunnerFlags, command: Command) => {
      if (flags.explain) {
        process.stdout.write(
          `${F.config} fields (apiVersion ${RUNNER_CONFIG_API_VERSION}):\n\n${runnerConfigReference()}\n`,
        );
        return;
      }
      const configDir = flags.config ?? process.env.DFN_RUNNER_CONFIG;
      if (!configDir)
        command.error('error: give the config directory with --config <dir> (or DFN_RUNNER_CONFIG)');
      // Loaded here, not at the top: the sandbox (isolated-vm) is only needed when a runner runs.
      const { runRunner } = await import('../../runner/main.js');
      const code = await runRunner({
        configDir: configDir!,
        ...(flags.replica ? { replica: flags.replica } : {}),
        ...(flags.check ? { check: true } : {}),
      });
      // Explicit: a stray handle (a socket closing late) must not keep a stopped runner's pod alive.
      process.exit(code);
    });
}
