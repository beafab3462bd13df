// FunctionInstance (dfn.dev/v1alpha1): one deployment of a DestinationFunction, connected to one source.
// Its delivery parts are the runner config's own schemas (api/runner-config.ts), so the two cannot disagree.

import type { V1ObjectMeta } from '@kubernetes/client-node';
import { z } from 'zod';
import { HealthReasons } from './delivery-status.js';
import {
  type API_GROUP_VERSION,
  ConditionListSchema,
  ObjectNameSchema,
  ResourceRequirementsSchema,
  SecretKeyRefSchema,
} from './kube-types.js';
import {
  BatchingSchema,
  ConsumerSchema,
  checkBatchFitsConcurrency,
  DataControlSchema,
  FiltersSchema,
  InstanceSchema,
  LimitsSchema,
  NetworkSchema,
  RetrySchema,
} from './runner-config.js';
import { SettingNameSchema } from './settings.js';

export const FUNCTION_INSTANCE_KIND = 'FunctionInstance';

const count = (description: string) => z.number().int().min(0).describe(description);

export const FunctionInstanceSpecSchema = z
  .strictObject({
    functionRef: z
      .strictObject({
        name: ObjectNameSchema.describe('Name of the DestinationFunction, in the same namespace.'),
        revision: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe(
            "A revision of the function to run (Segment's Save without deploying). Unset: the latest, " +
              'and every new one as it comes (Save & Deploy).',
          ),
      })
      .describe('The function this instance runs.'),
    source: InstanceSchema.shape.source,
    // Keys are not constrained here: the operator checks them against the function's settings schema
    // (an unknown name is reported there), and the API server could not check them (see crd/refinements.ts).
    settings: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(
        "Values of the function's non-sensitive settings, by name (any JSON type: checked against the " +
          "function's settings schema, reported in the SettingsValid condition).",
      ),
    secretSettings: z
      .record(
        SettingNameSchema,
        z
          .strictObject({
            secretKeyRef: SecretKeyRefSchema.describe('The Secret key holding the value.'),
          })
          .describe('Where one sensitive setting is.'),
      )
      .optional()
      .describe("Values of the function's sensitive settings: Secret keys, by setting name."),
    filters: FiltersSchema.optional(),
    dataControl: DataControlSchema.optional(),
    batching: BatchingSchema.optional(),
    retry: RetrySchema.optional(),
    network: NetworkSchema.optional(),
    consumer: z
      .strictObject({
        maxAckPending: ConsumerSchema.shape.maxAckPending.describe(
          'Unacknowledged events allowed across all replicas of this instance.',
        ),
        ackWaitMs: ConsumerSchema.shape.ackWaitMs.describe(
          'How long a runner may hold an event without a sign of life before NATS redelivers it. The ' +
            'runner signals progress on events it holds longer.',
        ),
      })
      .optional()
      .describe("The instance's durable JetStream consumer, which the operator creates."),
    limits: LimitsSchema.omit({ timeoutMs: true, memoryMb: true })
      .optional()
      .describe(
        'Limits of each runner replica: concurrency, console output, fetch() and cache bounds (time and ' +
          "memory of an invocation are the function's spec.limits).",
      ),
    replicas: z.number().int().min(0).default(1).describe('Runner replicas (all share the consumer).'),
    resources: ResourceRequirementsSchema.optional().describe(
      "The runner container's resource requests and limits (as on any Pod). Default: the operator's " +
        "--runner-resources (the chart's runner.resources), else sized from limits.memoryMb.",
    ),
    suspend: z
      .boolean()
      .default(false)
      .describe('Stop delivering (no runner runs) while events keep waiting in the consumer.'),
  })
  .superRefine((spec, ctx) => {
    checkBatchFitsConcurrency(spec, ctx);
    for (const name of Object.keys(spec.secretSettings ?? {})) {
      if (spec.settings && name in spec.settings) {
        ctx.addIssue({
          code: 'custom',
          path: ['secretSettings', name],
          message: `setting "${name}" is also in settings: a setting is either sensitive (secretSettings) or not`,
        });
      }
    }
  })
  .describe('One deployment of a function: its source, settings and delivery behaviour.');

export const FunctionInstanceStatusSchema = z
  .strictObject({
    observedGeneration: count('The .metadata.generation this status describes.').optional(),
    revision: z.number().int().min(1).optional().describe('The function revision the runners run.'),
    replicas: count(
      "Runner Pods of the instance (its Deployment's status.replicas); read by the scale subresource.",
    ).optional(),
    readyReplicas: count('Runner replicas that are ready.').optional(),
    selector: z
      .string()
      .optional()
      .describe('Label selector of the runner Pods, for the scale subresource (HPA, KEDA).'),
    delivered: count(
      'Events the function handled successfully, counted once each over all replicas and restarts.',
    ).optional(),
    retrying: count(
      'Events waiting for their next attempt now (their retries scheduled in the retry stream).',
    ).optional(),
    failed: count(
      'Events that failed for good: discarded (an error that is not retried) or dead-lettered.',
    ).optional(),
    deadLettered: count(
      'Events that used up their attempts (or crashes), kept in the dead-letter stream for dfn replay.',
    ).optional(),
    filtered: count('Events the filters or integrations kept from the function.').optional(),
    backlog: count(
      "Events waiting in the instance's consumer, not yet delivered to a runner: scale replicas on it.",
    ).optional(),
    lastError: z
      .strictObject({
        type: z.string().min(1).describe('Error type, as in delivery records (e.g. Timeout, BadRequest).'),
        message: z
          .string()
          .describe('Its message (sensitive setting values redacted, at most 512 characters).'),
        time: z.iso.datetime().describe('When the attempt ended.'),
      })
      .optional()
      .describe('The most recent failed delivery attempt (retried, discarded or dead-lettered).'),
    conditions: ConditionListSchema.optional(),
  })
  .describe('What the operator observed: revision, replicas, delivery counts, health, conditions.');

export type FunctionInstanceSpecInput = z.input<typeof FunctionInstanceSpecSchema>;
export type FunctionInstanceSpec = z.output<typeof FunctionInstanceSpecSchema>;
export type FunctionInstanceStatus = z.infer<typeof FunctionInstanceStatusSchema>;

export interface FunctionInstance {
  apiVersion: typeof API_GROUP_VERSION;
  kind: typeof FUNCTION_INSTANCE_KIND;
  metadata: V1ObjectMeta;
  spec: FunctionInstanceSpecInput;
  status?: FunctionInstanceStatus;
}

/** Condition types of a FunctionInstance. Ready summarises SettingsValid, ConsumerReady and RunnerReady. */
export const FunctionInstanceConditions = {
  Ready: 'Ready',
  /** False (reason InvalidSettings or SecretNotFound, the message naming the field) when settings fail the schema. */
  SettingsValid: 'SettingsValid',
  /** The instance's durable JetStream consumer exists as the spec defines it. */
  ConsumerReady: 'ConsumerReady',
  /** The runner Deployment has rolled out and its replicas are ready. */
  RunnerReady: 'RunnerReady',
  /**
   * Segment's Connection Health: False when most recent delivery attempts fail, True again when they
   * succeed (api/delivery-status.ts: judgeHealth, reasons DeliveriesFailing / DeliveriesSucceeding).
   * Not part of Ready.
   */
  Healthy: 'Healthy',
} as const;

/** Reasons of a FunctionInstance's conditions: CamelCase words a program can match. */
export const FunctionInstanceReasons = {
  /** Ready: the runners run the resolved revision. */
  Deployed: 'Deployed',
  /** Ready: spec.suspend is set: no runner runs, events wait in the consumer. */
  Suspended: 'Suspended',
  /** Ready: the spec fails a check the API server cannot make (api/crd/refinements.ts). */
  InvalidSpec: 'InvalidSpec',
  /** Ready: spec.functionRef names no DestinationFunction. */
  FunctionNotFound: 'FunctionNotFound',
  /** Ready: the function has no valid revision yet (its code is invalid or not checked yet). */
  FunctionNotReady: 'FunctionNotReady',
  /** Ready: spec.functionRef.revision names a revision that does not exist (or was pruned). */
  RevisionNotFound: 'RevisionNotFound',
  /** Ready: spec.source is not a source of the gateway's write keys, so it would never receive an event. */
  SourceUnknown: 'SourceUnknown',
  /** Ready: spec.network.allowPrivateNetwork in a namespace the operator does not allow it in. */
  PrivateNetworkNotAllowed: 'PrivateNetworkNotAllowed',
  /** SettingsValid: the settings satisfy the revision's settings schema. */
  SettingsValid: 'SettingsValid',
  /** SettingsValid: a setting is missing, of the wrong type, unknown, or sensitive but given in plain settings. */
  InvalidSettings: 'InvalidSettings',
  /** SettingsValid: a Secret or key named in spec.secretSettings does not exist. */
  SecretNotFound: 'SecretNotFound',
  /** ConsumerReady: the consumer exists as defined. */
  ConsumerReady: 'ConsumerReady',
  /** ConsumerReady: NATS could not be reached or refused the consumer; retried with backoff. */
  NatsUnavailable: 'NatsUnavailable',
  /** RunnerReady: the runner Deployment is rolling out. */
  RolloutInProgress: 'RolloutInProgress',
  /** RunnerReady: the rollout stalled (e.g. pods that never become ready: ProgressDeadlineExceeded). */
  RunnerNotReady: 'RunnerNotReady',
  /** RunnerReady: every replica is ready with the current revision and config. */
  RunnersReady: 'RunnersReady',
  ...HealthReasons,
} as const;
