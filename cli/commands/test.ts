// `dfn test`: run a destination function locally against an event (or a batch) in the real sandbox,
// and show what Segment's test console would: outcome, error, logs and request traces.

import { basename } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { FunctionSettings, SegmentEvent } from '../../api/events.js';
import type { Outcome } from '../../api/outcome.js';
import {
  FunctionLoadError,
  type FunctionSandbox,
  type InvocationReport,
  loadSupervisedFunction,
  type RequestTrace,
} from '../../sandbox/index.js';
import { parseJson, readInput, UsageError } from '../input.js';
import { notTracedText } from '../not-traced.js';

interface TestOptions {
  event: string;
  settings?: string;
  sensitive?: string[];
  json?: boolean;
  allowPrivateNetwork?: boolean;
  timeout: number;
  memory: number;
}

export interface TestResult {
  outcome: Outcome['outcome'];
  errorType?: string;
  message?: string;
  logs: string[];
  requests: Pick<RequestTrace, 'method' | 'url' | 'status' | 'durationMs'>[];
  /** Requests made past the traced ones (per invocation, at most BOUNDS.tracesPerInvocation are). */
  requestsNotTraced?: number;
  results?: Outcome[];
}

export function registerTestCommand(program: Command): void {
  program
    .command('test')
    .description(
      'Run a function locally against an event or a batch of events, in the same sandbox runners use.',
    )
    .argument('<function.js>', 'the function source: a script defining onTrack, onIdentify, … and/or onBatch')
    .requiredOption(
      '-e, --event <file.json|->',
      'the event as JSON (an object), or an array of events for onBatch; - reads stdin',
    )
    .option(
      '-s, --settings <file.json>',
      'settings passed to the handlers as their second argument (a JSON object)',
    )
    .option(
      '--sensitive <keys>',
      'settings whose values are redacted from logs and traces (comma-separated)',
      (v: string) =>
        v
          .split(',')
          .map((k) => k.trim())
          .filter(Boolean),
    )
    .option('--json', 'print one JSON object instead of the human-readable report')
    .option(
      '--allow-private-network',
      'let fetch reach loopback and private addresses (cloud metadata stays refused)',
    )
    .addOption(new Option('--timeout <ms>', 'time limit per invocation').default(5000).argParser(positiveInt))
    .addOption(
      new Option('--memory <MiB>', 'memory limit of the sandbox').default(128).argParser(positiveInt),
    )
    .addHelpText(
      'after',
      `
An event object runs the handler of its type (track → onTrack, identify → onIdentify, …, delete → onDelete).
An array runs onBatch(events, settings), or each event's own handler when the function has no onBatch.

Exit status: 0 success, 1 retry or discard, 2 usage or load error (missing file, bad JSON, syntax error).

Examples:
  dfn test examples/webhook/function.js --event examples/webhook/sample/track.json --settings settings.json
  echo '{"type":"track","event":"Signed Up","userId":"u1"}' | dfn test function.js --event - --json`,
    )
    .action(async (file: string, options: TestOptions) => {
      process.exitCode = await runTest(file, options);
    });
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('it must be a positive integer.');
  return n;
}

async function runTest(file: string, options: TestOptions): Promise<number> {
  let source: string;
  let input: unknown;
  let settings: FunctionSettings = {};
  try {
    source = await readInput(file, 'function');
    input = parseJson(
      await readInput(options.event, 'event'),
      options.event === '-' ? 'stdin' : options.event,
    );
    if (typeof input !== 'object' || input === null) {
      throw new UsageError(`${options.event}: the event must be a JSON object, or an array of events`);
    }
    if (options.settings) {
      const parsed = parseJson(await readInput(options.settings, 'settings'), options.settings);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new UsageError(`${options.settings}: settings must be a JSON object`);
      }
      settings = parsed as FunctionSettings;
    }
  } catch (err) {
    return usageFailure(err);
  }

  const sensitiveValues = (options.sensitive ?? []).flatMap((key) => {
    const v = settings[key];
    return v === undefined || v === null ? [] : [typeof v === 'string' ? v : JSON.stringify(v)];
  });
  let sandbox: FunctionSandbox;
  try {
    // In a sandbox process, as in the runner: a function that aborts or wedges it still gets a report.
    sandbox = await loadSupervisedFunction(source, {
      settings,
      sensitiveValues,
      allowPrivateNetwork: options.allowPrivateNetwork ?? false,
      limits: { timeoutMs: options.timeout, memoryMb: options.memory },
      filename: basename(file),
    });
  } catch (err) {
    if (err instanceof FunctionLoadError) {
      const where = err.line !== undefined ? `${file}:${err.line}:${err.column}: ` : `${file}: `;
      process.stderr.write(`dfn test: ${where}${err.reason}\n`);
      return 2;
    }
    throw err;
  }

  try {
    const result = await execute(sandbox, input as SegmentEvent | SegmentEvent[]);
    result.logs = [...sandbox.loadLogs, ...result.logs];
    process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : humanReport(result, input));
    return result.outcome === 'success' ? 0 : 1;
  } finally {
    sandbox.dispose();
  }
}

async function execute(sandbox: FunctionSandbox, input: SegmentEvent | SegmentEvent[]): Promise<TestResult> {
  const trace = (r: RequestTrace) => ({
    method: r.method,
    url: r.url,
    status: r.status,
    durationMs: r.durationMs,
  });
  if (!Array.isArray(input)) {
    const [report] = await sandbox.invoke([input]);
    return {
      ...flatten(report!.outcome),
      logs: report!.logs,
      requests: report!.requests.map(trace),
      ...notTraced([report!]),
    };
  }
  if (sandbox.handlers.has('onBatch')) {
    const report = await sandbox.invokeBatch(input);
    return {
      ...flatten(report.outcome),
      logs: report.logs,
      requests: report.requests.map(trace),
      ...notTraced([report]),
      results: report.results,
    };
  }
  const reports = await sandbox.invoke(input);
  const results = reports.map((r) => r.outcome);
  const worst = results.find((r) => r.outcome === 'retry') ?? results.find((r) => r.outcome === 'discard');
  return {
    ...flatten(worst ?? { outcome: 'success' }),
    logs: reports.flatMap((r) => r.logs),
    requests: reports.flatMap((r) => r.requests.map(trace)),
    ...notTraced(reports),
    results,
  };
}

function notTraced(reports: readonly InvocationReport[]): Pick<TestResult, 'requestsNotTraced'> {
  const count = reports.reduce((n, r) => n + (r.requestsNotTraced ?? 0), 0);
  return count ? { requestsNotTraced: count } : {};
}

function flatten(o: Outcome): Pick<TestResult, 'outcome' | 'errorType' | 'message'> {
  return o.outcome === 'success'
    ? { outcome: 'success' }
    : { outcome: o.outcome, errorType: o.errorType, message: o.message };
}

function describeOutcome(o: Pick<TestResult, 'outcome' | 'errorType' | 'message'>): string {
  if (o.outcome === 'success') return 'success';
  return `${o.outcome} (${o.errorType}): ${o.message}`;
}

function humanReport(result: TestResult, input: unknown): string {
  const lines: string[] = [];
  lines.push(`Outcome: ${describeOutcome(result)}`);
  if (result.results) {
    lines.push('', 'Per event:');
    const events = input as SegmentEvent[];
    result.results.forEach((r, i) => {
      const e = events[i];
      const label = [e?.type, e?.event ?? e?.name, e?.messageId].filter(Boolean).join(' ');
      lines.push(`  [${i}] ${label || '(event)'}: ${describeOutcome(flatten(r))}`);
    });
  }
  lines.push('', result.logs.length ? 'Logs:' : 'Logs: (none)');
  for (const l of result.logs) lines.push(`  ${l}`);
  lines.push('', result.requests.length ? 'Requests:' : 'Requests: (none)');
  for (const r of result.requests) {
    lines.push(`  ${r.method} ${r.url} → ${r.status === 0 ? 'failed' : r.status} (${r.durationMs} ms)`);
  }
  if (result.requestsNotTraced) lines.push(`  … and ${notTracedText(result.requestsNotTraced)}`);
  return `${lines.join('\n')}\n`;
}

function usageFailure(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`dfn test: ${err.message}\n`);
    return 2;
  }
  throw err;
}
