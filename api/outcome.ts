// The outcome table: every way an invocation can end, and what the runner does with it.
// Defined once here; the sandbox, runner, CLI and delivery records all read it.

export type OutcomeKind = 'success' | 'retry' | 'discard';

/** Error types as Segment's delivery view names them. */
export const ERROR_TYPES = {
  BadRequest: { outcome: 'discard', label: 'Bad Request' },
  InvalidSettings: { outcome: 'discard', label: 'Invalid Settings' },
  MessageRejected: { outcome: 'discard', label: 'Message Rejected' },
  UnsupportedEventType: { outcome: 'discard', label: 'Unsupported Event Type' },
  Retry: { outcome: 'retry', label: 'Retry' },
  Timeout: { outcome: 'retry', label: 'Timeout' },
  // Not an attempt's result but the runner's: the event's sandbox or runner died while it was in flight.
  // Re-enqueued without using an attempt, and dead-lettered once it has crashed MAX_CRASHES times.
  Crashed: { outcome: 'retry', label: 'Crashed' },
} as const satisfies Record<string, { outcome: Exclude<OutcomeKind, 'success'>; label: string }>;

export type ErrorType = keyof typeof ERROR_TYPES;

export function isErrorType(value: unknown): value is ErrorType {
  return typeof value === 'string' && Object.hasOwn(ERROR_TYPES, value);
}

/** The error classes user code can throw (globals in the sandbox), and the error type each maps to. */
export const ERROR_CLASS_TYPES = {
  EventNotSupported: 'UnsupportedEventType',
  InvalidEventPayload: 'MessageRejected',
  ValidationError: 'MessageRejected',
  RetryError: 'Retry',
} as const satisfies Record<string, ErrorType>;

export type ErrorClassName = keyof typeof ERROR_CLASS_TYPES;

export type Outcome =
  | { outcome: 'success' }
  | { outcome: 'retry' | 'discard'; errorType: ErrorType; message: string };

export const SUCCESS: Outcome = Object.freeze({ outcome: 'success' });

export function failure(errorType: ErrorType, message: string): Outcome {
  return { outcome: ERROR_TYPES[errorType].outcome, errorType, message };
}

/**
 * Outcome of an error thrown by user code: the Segment error classes map through ERROR_CLASS_TYPES,
 * anything else is a Bad Request (Segment's rule for unexpected errors).
 */
export function outcomeOfThrown(errorClass: string | undefined, message: string): Outcome {
  const mapped =
    errorClass && Object.hasOwn(ERROR_CLASS_TYPES, errorClass)
      ? ERROR_CLASS_TYPES[errorClass as ErrorClassName]
      : 'BadRequest';
  return failure(mapped, message);
}

/**
 * Outcome of one entry of onBatch's partial-failure result (`{status, errormessage}`):
 * 2xx success, 429 and 5xx retry, any other status discards as Bad Request.
 */
export function outcomeOfBatchStatus(status: number, errormessage: string | undefined): Outcome {
  if (status >= 200 && status < 300) return SUCCESS;
  const message = errormessage || `status ${status}`;
  if (status === 429 || (status >= 500 && status < 600)) return failure('Retry', message);
  return failure('BadRequest', message);
}
