// The runner's config directory, defined once: its file layout, the config.yaml schema (TS types, validation
// and the reference docs all come from the zod schema below). The operator writes exactly this; `dfn runner` reads it.

import { stringify } from 'yaml';
import { z } from 'zod';
import { EVENT_TYPES } from './events.js';
import {
  DEFAULT_ACK_WAIT_MS,
  DEFAULT_MAX_ACK_PENDING,
  DEFAULT_NATS_URL,
  DEFAULT_PREFIX,
} from './jetstream.js';
import { SettingDefinitionListSchema } from './settings.js';

export const RUNNER_CONFIG_API_VERSION = 'dfn.dev/v1alpha1';
export const RUNNER_CONFIG_KIND = 'RunnerConfig';

/**
 * The files of a runner config directory. One file per key, so that a Kubernetes projected volume can
 * assemble the directory from ConfigMaps (config.yaml, function.js, settings.json) and a Secret (secrets/).
 */
export const RUNNER_CONFIG_FILES = {
  /** The RunnerConfig document (YAML): which instance, where its events are, how to deliver them. */
  config: 'config.yaml',
  /** The function's source, as the user wrote it. */
  function: 'function.js',
  /** Non-sensitive settings: one JSON object. Optional; `{}` when absent. */
  settings: 'settings.json',
  /** Sensitive settings: one file per setting, the file name is the setting name, the content its value. */
  secrets: 'secrets',
} as const;

export const K8S_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const K8S_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBJECT_SAFE = /^[A-Za-z0-9_.-]+$/;
const NATS_NAME = /^[A-Za-z0-9_-]+$/;

const ms = (description: string) => z.number().int().min(0).describe(description);
const positiveMs = (description: string) => z.number().int().min(1).describe(description);

/** Operators of a filter condition; `value` is required by all but exists/notExists. */
export const CONDITION_OPS = [
  'equals',
  'notEquals',
  'in',
  'notIn',
  'contains',
  'startsWith',
  'endsWith',
  'matches',
  'gt',
  'gte',
  'lt',
  'lte',
  'exists',
  'notExists',
] as const;
export type ConditionOp = (typeof CONDITION_OPS)[number];

const ConditionSchema = z
  .strictObject({
    field: z
      .string()
      .min(1)
      .describe(
        'Dotted path into the event, e.g. `properties.total`, `context.library.name`, `userId`. ' +
          'Array elements by index: `properties.items.0.sku`.',
      ),
    op: z
      .enum(CONDITION_OPS)
      .describe(
        'equals / notEquals (deep equality), in / notIn (value is a list), contains (substring or list ' +
          'element), startsWith / endsWith (strings), matches (value is a regular expression), ' +
          'gt / gte / lt / lte (numbers), exists / notExists (no value).',
      ),
    value: z.unknown().optional().describe('What the field is compared with; omitted for exists/notExists.'),
  })
  .superRefine((c, ctx) => {
    const needsValue = c.op !== 'exists' && c.op !== 'notExists';
    if (!needsValue) {
      if (c.value !== undefined)
        ctx.addIssue({ code: 'custom', path: ['value'], message: `not used by op "${c.op}"` });
      return;
    }
    if (c.value === undefined) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `required by op "${c.op}"` });
      return;
    }
    const kind = Array.isArray(c.value) ? 'a list' : typeof c.value;
    if ((c.op === 'in' || c.op === 'notIn') && !Array.isArray(c.value)) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `op "${c.op}" needs a list (got ${kind})` });
    }
    if (['gt', 'gte', 'lt', 'lte'].includes(c.op) && typeof c.value !== 'number') {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `op "${c.op}" needs a number (got ${kind})` });
    }
    if (['startsWith', 'endsWith', 'matches'].includes(c.op) && typeof c.value !== 'string') {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `op "${c.op}" needs a string (got ${kind})` });
    }
    if (c.op === 'matches' && typeof c.value === 'string') {
      try {
        new RegExp(c.value);
      } catch (err) {
        ctx.addIssue({
          code: 'custom',
          path: ['value'],
          message: `not a valid regular expression: ${(err as Error).message}`,
        });
      }
    }
  });

export type Condition = z.infer<typeof ConditionSchema>;

export const InstanceSchema = z
  .strictObject({
    namespace: z
      .string()
      .max(63)
      .regex(K8S_LABEL, 'must be a Kubernetes namespace name (lowercase letters, digits and "-")')
      .describe('Kubernetes namespace of the FunctionInstance.'),
    name: z
      .string()
      .max(253)
      .regex(K8S_NAME, 'must be a Kubernetes object name (lowercase letters, digits, "-" and ".")')
      .describe('Name of the FunctionInstance. With the namespace it names the consumer, stats and records.'),
    source: z
      .string()
      .min(1)
      .regex(SUBJECT_SAFE, 'must use letters, digits, "-", "_" and "."')
      .describe('The source whose events this instance receives (the gateway publishes per source).'),
  })
  .describe('Which FunctionInstance this runner serves.');

const FunctionSchema = z
  .strictObject({
    name: z.string().min(1).optional().describe('Name of the DestinationFunction (shown in logs).'),
    revision: z
      .string()
      .min(1)
      .describe(
        'Revision of the function code (a hash). Reported in stats, delivery records and dead letters.',
      ),
    settingsSchema: SettingDefinitionListSchema.default([]).describe(
      "The function's declared settings. When settings.json and secrets/ do not satisfy it, every event is " +
        'discarded as Invalid Settings (as in Segment) instead of running the function.',
    ),
  })
  .describe('The function whose code is in function.js.');

const NatsSchema = z
  .strictObject({
    url: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .default(DEFAULT_NATS_URL)
      .describe('NATS server URL, or a list of them (a cluster).'),
    prefix: z
      .string()
      .regex(NATS_NAME, 'must use letters, digits, "-" and "_"')
      .default(DEFAULT_PREFIX)
      .describe('Subject prefix and stream-name stem of this install (several installs may share one NATS).'),
    stream: z
      .string()
      .regex(NATS_NAME, 'must use letters, digits, "-" and "_"')
      .optional()
      .describe('Events stream name. Default: derived from the prefix (`DFN_EVENTS`).'),
    consumer: z
      .string()
      .regex(NATS_NAME, 'must use letters, digits, "-" and "_"')
      .optional()
      .describe('Durable consumer name. Default: derived from the instance (`fi_<namespace>__<name>`).'),
    credentialsFile: z
      .string()
      .min(1)
      .optional()
      .describe('NATS credentials (.creds) file; relative paths are relative to the config directory.'),
    tokenFile: z.string().min(1).optional().describe('File holding a NATS auth token.'),
    user: z.string().min(1).optional().describe('NATS user name; needs passwordFile.'),
    passwordFile: z.string().min(1).optional().describe('File holding the password of `user`.'),
    connectTimeoutMs: positiveMs(
      'How long to keep trying to reach NATS at start-up before exiting with an error.',
    ).default(30_000),
    ensureTopology: z
      .boolean()
      .default(false)
      .describe(
        "Create the streams and this instance's consumer if missing (standalone use). Under the operator " +
          'leave false: the operator owns them, and the runner waits for its consumer to exist.',
      ),
  })
  .superRefine((n, ctx) => {
    const modes = [
      n.credentialsFile && 'credentialsFile',
      n.tokenFile && 'tokenFile',
      n.user && 'user',
    ].filter(Boolean);
    if (modes.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: [modes[1] as string],
        message: `use only one of ${modes.join(', ')}`,
      });
    }
    if (n.user && !n.passwordFile)
      ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'required with user' });
    if (n.passwordFile && !n.user)
      ctx.addIssue({ code: 'custom', path: ['user'], message: 'required with passwordFile' });
  })
  .describe('Where the events are, and how to authenticate.');

export const ConsumerSchema = z
  .strictObject({
    maxAckPending: z
      .number()
      .int()
      .min(1)
      .default(DEFAULT_MAX_ACK_PENDING)
      .describe(
        'Unacknowledged events allowed across all replicas (applied when nats.ensureTopology is true).',
      ),
    ackWaitMs: positiveMs(
      'How long a runner may hold an event without a sign of life before NATS redelivers it (applied when ' +
        'nats.ensureTopology is true). The runner signals progress on events it holds longer.',
    )
      .min(1000)
      .default(DEFAULT_ACK_WAIT_MS),
  })
  .describe('The durable consumer, when the runner creates it.');

export const FiltersSchema = z
  .strictObject({
    eventTypes: z
      .array(z.enum(EVENT_TYPES))
      .default([])
      .describe('Only these event types reach the function; all when empty. Also filtered server-side.'),
    eventNames: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Only track events with these `event` names reach the function; all when empty. Other types pass.',
      ),
    require: z
      .array(ConditionSchema)
      .default([])
      .describe('Conditions an event must all meet to reach the function ("only send events when").'),
    exclude: z
      .array(ConditionSchema)
      .default([])
      .describe('Conditions any one of which keeps an event from the function ("don\'t send events when").'),
    integrationNames: z
      .array(z.string().min(1))
      .default([])
      .describe(
        "Names this destination answers to in an event's `integrations` object (with the instance name, always). " +
          '`{"All": false}` skips the function unless one of its names is `true`; a name set to `false` skips it.',
      ),
  })
  .describe('Destination filters: events that fail them are acknowledged and counted as filtered.');

export const DataControlSchema = z
  .strictObject({
    dropProperties: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Paths under `properties` removed before the function sees the event, e.g. `email`, `address.street`.',
      ),
    dropTraits: z
      .array(z.string().min(1))
      .default([])
      .describe('Paths removed from `traits` and from `context.traits`.'),
    dropContext: z
      .array(z.string().min(1))
      .default([])
      .describe('Paths under `context` removed, e.g. `ip`, `userAgent`, `location`.'),
  })
  .describe('Data control: fields removed from each event before the function sees it.');

export const MAX_BATCH_SIZE = 400;

export const BatchingSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'Deliver through onBatch (when the function defines it). A lone event at flush goes to its single handler.',
      ),
    maxSize: z
      .number()
      .int()
      .min(1)
      .max(MAX_BATCH_SIZE)
      .default(20)
      .describe(`Events per batch: a batch is flushed when it holds this many (at most ${MAX_BATCH_SIZE}).`),
    maxWaitMs: positiveMs(
      'A batch is flushed this long after its first event arrived, however small.',
    ).default(10_000),
  })
  .describe('onBatch batching, as Segment: flush on size or wait, mixed event types in one batch.');

export const RetrySchema = z
  .strictObject({
    maxAttempts: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(10)
      .describe('Delivery attempts per event, the first included; then the event is dead-lettered.'),
    initialDelayMs: ms('Delay after the first failed attempt.').default(30_000),
    multiplier: z.number().min(1).default(2).describe('Each delay is the previous one times this.'),
    maxDelayMs: ms('Upper bound of any one delay.').default(7_200_000),
    jitter: z
      .number()
      .min(0)
      .max(1)
      .default(0.2)
      .describe('Randomization: each delay is scaled by a factor drawn from [1 - jitter, 1 + jitter].'),
    delaysMs: z
      .array(z.number().int().min(0))
      .min(1)
      .optional()
      .describe(
        'Explicit delays after attempt 1, 2, …, replacing the exponential schedule (the last one repeats). ' +
          'Jitter still applies.',
      ),
  })
  .describe(
    'Retry schedule of retryable outcomes (RetryError, Timeout, 429/5xx in batch results). The default is ' +
      "Segment's: 10 attempts over about 4 hours, randomized exponential backoff.",
  );

export const LimitsSchema = z
  .strictObject({
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(200)
      .describe(
        "Events this replica holds at once (running, or waiting in a batch). Never more than the consumer's " +
          'maxAckPending, which bounds all replicas together.',
      ),
    timeoutMs: positiveMs('Time limit of one invocation (default 5000).').optional(),
    memoryMb: z
      .number()
      .int()
      .min(8)
      .optional()
      .describe("Heap limit of the function's isolate in MiB (default 128)."),
    logBytes: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Console output kept per invocation (default 4096).'),
    fetchTimeoutMs: positiveMs('Time limit of one fetch() request (default 10000).').optional(),
    fetchMaxResponseBytes: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Response body cap of fetch() (default 5 MiB).'),
    cacheEntries: z.number().int().min(0).optional().describe('Entries `cache` keeps (default 1000).'),
    cacheBytes: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Approximate bytes `cache` keeps (default 8 MiB).'),
  })
  .describe('Concurrency and the sandbox limits.');

export const NetworkSchema = z
  .strictObject({
    allowPrivateNetwork: z
      .boolean()
      .default(false)
      .describe(
        'Let fetch() reach loopback and private addresses (local destinations). Metadata addresses stay refused.',
      ),
  })
  .describe("The function's network egress.");

const StatsSchema = z
  .strictObject({
    intervalMs: positiveMs('How often cumulative counters are published over NATS for the operator.')
      .min(100)
      .default(5000),
  })
  .describe('Stats reporting.');

const HttpSchema = z
  .strictObject({
    host: z
      .string()
      .min(1)
      .default('0.0.0.0')
      .describe('Address of the /metrics, /healthz and /readyz server.'),
    port: z
      .number()
      .int()
      .min(0)
      .max(65_535)
      .default(8080)
      .describe('Port of that server; 0 picks a free one (logged at start).'),
  })
  .describe('Health and metrics endpoints.');

const ShutdownSchema = z
  .strictObject({
    gracePeriodMs: ms(
      'On SIGTERM, how long in-flight events may take to finish; those still running then (or once the last ' +
        "pull has ended, at most 5 s after the signal) are handed back to NATS. Keep it below the pod's " +
        'terminationGracePeriodSeconds.',
    ).default(20_000),
  })
  .describe('Graceful shutdown.');

export const RunnerConfigSchema = z
  .strictObject({
    apiVersion: z.literal(RUNNER_CONFIG_API_VERSION).describe('Version of this schema.'),
    kind: z.literal(RUNNER_CONFIG_KIND).describe('Always RunnerConfig.'),
    instance: InstanceSchema,
    function: FunctionSchema,
    nats: NatsSchema.prefault({}),
    consumer: ConsumerSchema.prefault({}),
    filters: FiltersSchema.prefault({}),
    dataControl: DataControlSchema.prefault({}),
    batching: BatchingSchema.prefault({}),
    retry: RetrySchema.prefault({}),
    limits: LimitsSchema.prefault({}),
    network: NetworkSchema.prefault({}),
    stats: StatsSchema.prefault({}),
    http: HttpSchema.prefault({}),
    shutdown: ShutdownSchema.prefault({}),
    logLevel: z
      .enum(['debug', 'info', 'warn', 'error'])
      .default('info')
      .describe('Least severe log level written.'),
  })
  .superRefine((c, ctx) => {
    // ensureTopology creates the standard names; a custom name would be a consumer nobody created.
    if (c.nats.ensureTopology) {
      for (const field of ['stream', 'consumer'] as const) {
        if (c.nats[field]) {
          ctx.addIssue({
            code: 'custom',
            path: ['nats', field],
            message: 'cannot be combined with nats.ensureTopology, which creates the standard names',
          });
        }
      }
    }
    checkBatchFitsConcurrency(c, ctx);
  });

/**
 * A batch can only fill if the replica may hold that many events at once. Shared with the FunctionInstance
 * spec, which carries both fields (before defaults, hence the fallbacks to the schemas' own defaults).
 */
export function checkBatchFitsConcurrency(
  c: { batching?: { enabled?: boolean; maxSize?: number }; limits?: { concurrency?: number } },
  ctx: z.RefinementCtx,
): void {
  const enabled = c.batching?.enabled ?? BATCHING_DEFAULTS.enabled;
  const maxSize = c.batching?.maxSize ?? BATCHING_DEFAULTS.maxSize;
  const concurrency = c.limits?.concurrency ?? LIMITS_DEFAULTS.concurrency;
  if (enabled && maxSize <= MAX_BATCH_SIZE && maxSize > concurrency) {
    ctx.addIssue({
      code: 'custom',
      path: ['limits', 'concurrency'],
      message: `must be at least batching.maxSize (${maxSize}) when batching is enabled (got ${concurrency})`,
    });
  }
}

/** The defaults the refinement above (and its CEL mirror in the FunctionInstance CRD) falls back to. */
export const BATCHING_DEFAULTS = BatchingSchema.parse({});
export const LIMITS_DEFAULTS = LimitsSchema.parse({});

/** config.yaml after validation, defaults applied. */
export type RunnerConfig = z.infer<typeof RunnerConfigSchema>;
/** config.yaml as written: only apiVersion, kind, instance and function are required. */
export type RunnerConfigInput = z.input<typeof RunnerConfigSchema>;
export type FiltersConfig = RunnerConfig['filters'];
export type DataControlConfig = RunnerConfig['dataControl'];
export type BatchingConfig = RunnerConfig['batching'];
export type RetryConfig = RunnerConfig['retry'];

export interface ConfigIssue {
  /** The file of the config directory at fault. */
  file: string;
  /** Dotted field path within it; empty for the file as a whole. */
  path: string;
  message: string;
}

/** Every problem found in a config directory, each naming its file and field. */
export class RunnerConfigError extends Error {
  override readonly name = 'RunnerConfigError';
  readonly code = 'DFN_INVALID_RUNNER_CONFIG';
  constructor(
    readonly dir: string,
    readonly issues: ConfigIssue[],
  ) {
    super(
      `invalid runner config in ${dir}:\n` +
        issues.map((i) => `  ${i.file}: ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n'),
    );
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}

let inputJsonSchema: Record<string, any> | undefined;
function jsonSchema(): Record<string, any> {
  inputJsonSchema ??= z.toJSONSchema(RunnerConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    any
  >;
  return inputJsonSchema;
}

/** The fields the schema knows at a path (for "did you mean" on unknown fields). */
function knownFields(path: readonly PropertyKey[]): string[] {
  let node: Record<string, any> | undefined = jsonSchema();
  for (const key of path) {
    if (!node) return [];
    node = typeof key === 'number' ? node.items : node.properties?.[key as string];
  }
  return Object.keys(node?.properties ?? {});
}

/** Edit distance, for "did you mean" (field names are short, so the quadratic table is nothing). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function closest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = distance(lower, name.toLowerCase());
    if (d <= Math.max(1, Math.floor(name.length / 4)) && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('');
}

function issueMessage(issue: z.core.$ZodIssue): string {
  const got = ` (got ${describeValue(issue.input)})`;
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required';
      return `must be ${issue.expected === 'array' ? 'a list' : issue.expected === 'object' ? 'an object' : `a ${issue.expected}`}${got}`;
    case 'too_big':
      return issue.origin === 'array' || issue.origin === 'string'
        ? `must have at most ${issue.maximum} ${issue.origin === 'array' ? 'entries' : 'characters'}`
        : `must be at most ${issue.maximum}${got}`;
    case 'too_small':
      if (issue.origin === 'array')
        return `must have at least ${issue.minimum} ${Number(issue.minimum) === 1 ? 'entry' : 'entries'}`;
      if (issue.origin === 'string')
        return Number(issue.minimum) === 1
          ? 'must not be empty'
          : `must have at least ${issue.minimum} characters`;
      return `must be at least ${issue.minimum}${got}`;
    case 'invalid_value':
      if (issue.input === undefined) return 'required';
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}${got}`
        : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}${got}`;
    case 'invalid_format':
      return `${issue.message}${got}`;
    case 'invalid_union':
      return `has the wrong form${got}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}${got}`;
    default:
      return issue.message;
  }
}

function toConfigIssues(file: string, error: z.ZodError): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownFields(issue.path);
      for (const key of issue.keys) {
        const suggestion = closest(key, known);
        issues.push({
          file,
          path: formatPath([...issue.path, key]),
          message: suggestion
            ? `unknown field (did you mean "${suggestion}"?)`
            : `unknown field${known.length ? ` (known: ${known.join(', ')})` : ''}`,
        });
      }
      continue;
    }
    issues.push({ file, path: formatPath(issue.path), message: issueMessage(issue) });
  }
  return issues;
}

/** Validates a parsed config.yaml document, applying defaults. Issues name the field path. */
export function parseRunnerConfig(doc: unknown, dir = '.'): RunnerConfig {
  const file = RUNNER_CONFIG_FILES.config;
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new RunnerConfigError(dir, [
      { file, path: '', message: `must be a YAML mapping (got ${describeValue(doc)})` },
    ]);
  }
  const result = RunnerConfigSchema.safeParse(doc, { reportInput: true });
  if (!result.success) throw new RunnerConfigError(dir, toConfigIssues(file, result.error));
  return result.data;
}

/** config.yaml for a document: what the operator puts in the instance's ConfigMap. Validates first. */
export function renderRunnerConfig(doc: RunnerConfigInput): string {
  parseRunnerConfig(doc);
  return stringify(doc);
}

// ---- reference docs, generated from the schema --------------------------------------------------------

function typeLabel(node: Record<string, any>): string {
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  if (node.enum) return node.enum.map((v: unknown) => `\`${String(v)}\``).join(' \\| ');
  if (node.anyOf) return node.anyOf.map(typeLabel).join(' or ');
  if (node.type === 'array') return `list of ${node.items ? typeLabel(node.items) : 'values'}`;
  if (node.type === 'integer') return 'integer';
  if (node.type === 'object') return 'object';
  if (node.type) return String(node.type);
  return 'any';
}

function rows(node: Record<string, any>, prefix: string, out: string[]): void {
  const required = new Set<string>(node.required ?? []);
  for (const [key, child] of Object.entries<Record<string, any>>(node.properties ?? {})) {
    const path = `${prefix}${key}`;
    const isObject = child.type === 'object' && child.properties;
    const isObjectList = child.type === 'array' && child.items?.type === 'object' && child.items.properties;
    const dflt =
      child.default === undefined || isObject
        ? required.has(key) && !isObject
          ? '_required_'
          : ''
        : `\`${JSON.stringify(child.default)}\``;
    const description = String(child.description ?? '').replace(/\|/g, '\\|');
    out.push(`| \`${path}\` | ${isObject ? 'object' : typeLabel(child)} | ${dflt} | ${description} |`);
    if (isObject) rows(child, `${path}.`, out);
    if (isObjectList) rows(child.items, `${path}[].`, out);
  }
}

/** The config.yaml field reference as a Markdown table (printed by `dfn runner --explain`, kept in docs/). */
export function runnerConfigReference(): string {
  const out = ['| Field | Type | Default | Description |', '| --- | --- | --- | --- |'];
  rows(jsonSchema(), '', out);
  return out.join('\n');
}
