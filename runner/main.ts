// The runner process: config directory in, events delivered until SIGTERM. Exit status 0 after a graceful
// stop, 2 for a bad config directory or function (nothing consumed), 1 when NATS cannot be used.

import type { FastifyInstance } from 'fastify';
import { RunnerConfigError } from '../api/runner-config.js';
import { settingsProblems } from '../api/settings.js';
import { displayServers } from '../lib/nats-url.js';
import { processLogger, processRegistry } from '../lib/telemetry.js';
import { FunctionLoadError } from '../sandbox/index.js';
import { loadRunnerConfig } from './config-loader.js';
import { listeningPort, startHttpServer } from './http.js';
import { runnerRegistry } from './metrics.js';
import { Runner } from './runner.js';

export interface RunRunnerOptions {
  configDir: string;
  replica?: string;
  /** Validate the directory and load the function, then exit. */
  check?: boolean;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_BAD_CONFIG = 2;

export async function runRunner(options: RunRunnerOptions): Promise<number> {
  const out = options.stdout ?? ((t) => process.stdout.write(t));
  const err = options.stderr ?? ((t) => process.stderr.write(t));

  let loaded: Awaited<ReturnType<typeof loadRunnerConfig>>;
  try {
    loaded = await loadRunnerConfig(options.configDir);
  } catch (e) {
    if (e instanceof RunnerConfigError) {
      err(`dfn runner: ${e.message}\n`);
      return EXIT_BAD_CONFIG;
    }
    throw e;
  }
  const { config } = loaded;
  const log = processLogger('runner', config.logLevel).child({
    namespace: config.instance.namespace,
    instance: config.instance.name,
  });

  let runner: Runner;
  try {
    runner = await Runner.load(loaded, { log, ...(options.replica ? { replica: options.replica } : {}) });
  } catch (e) {
    if (e instanceof FunctionLoadError) {
      err(`dfn runner: invalid runner config in ${loaded.dir}:\n  function.js: ${e.message}\n`);
      return EXIT_BAD_CONFIG;
    }
    throw e;
  }

  // Settings that fail the function's schema do not stop the runner: as in Segment, each event is
  // discarded as Invalid Settings (and recorded), so the problem shows in the delivery view.
  const invalidSettings = settingsProblems(config.function.settingsSchema, loaded.settings);

  if (options.check) {
    if (invalidSettings.length > 0) {
      err(
        `dfn runner: ${loaded.dir}: settings do not satisfy function.settingsSchema:\n  ${invalidSettings.join('\n  ')}\n`,
      );
      await runner.stop(0);
      return EXIT_BAD_CONFIG;
    }
    const handlers = [...runner.handlers].sort().join(', ') || 'none';
    out(
      `${loaded.dir}: valid\n` +
        `  instance ${config.instance.namespace}/${config.instance.name} (source ${config.instance.source}), revision ${config.function.revision}\n` +
        `  handlers: ${handlers}\n` +
        `  settings: ${Object.keys(loaded.settings).length} (${loaded.sensitiveKeys.length} sensitive)\n`,
    );
    await runner.stop(0);
    return EXIT_OK;
  }

  log.info(
    {
      revision: config.function.revision,
      handlers: [...runner.handlers],
      replica: runner.replica,
      nats: displayServers(config.nats.url),
    },
    'runner starting',
  );
  if (runner.functionLoadLogs.length > 0)
    log.info({ logs: runner.functionLoadLogs }, 'function console output while loading');
  if (invalidSettings.length > 0) {
    log.warn(
      {
        problems: invalidSettings,
      },
      "settings do not satisfy the function's settings schema: events will be discarded as Invalid Settings",
    );
  }

  let http: FastifyInstance;
  try {
    http = await startHttpServer(
      {
        readiness: () => runner.readiness(),
        metrics: runnerRegistry(runner.stats, () => runner.gauges(), processRegistry('dfn_runner_')),
      },
      config.http.host,
      config.http.port,
    );
  } catch (e) {
    err(
      `dfn runner: cannot serve /metrics and probes on ${config.http.host}:${config.http.port} (http.port): ${(e as Error).message}\n`,
    );
    await runner.stop(0);
    return EXIT_FAILURE;
  }
  log.info({ host: config.http.host, port: listeningPort(http) }, 'serving /healthz, /readyz and /metrics');

  let stopping = false;
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => {
    resolveStopped = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now; unfinished events will be redelivered');
      process.exit(EXIT_FAILURE);
    }
    stopping = true;
    log.info({ signal, gracePeriodMs: config.shutdown.gracePeriodMs }, 'stopping');
    void (async () => {
      const { released } = await runner.stop();
      await http.close();
      log.info({ released, counters: runner.stats.counters }, 'stopped');
      resolveStopped(EXIT_OK);
    })();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', (reason) => log.error({ error: reason }, 'unhandled rejection'));

  try {
    await runner.start();
  } catch (e) {
    if (stopping) return stopped;
    err(`dfn runner: ${(e as Error).message}\n`);
    await runner.stop(0).catch(() => {});
    await http.close();
    return EXIT_FAILURE;
  }
  return stopped;
}
