// Segment's error classes: thrown by user code, mapped to outcomes by the host's outcome table
// (api/outcome.ts).

export class EventNotSupported extends Error {
  constructor(message) {
    super(message);
    this.name = 'EventNotSupported';
  }
}

export class InvalidEventPayload extends Error {
  constructor(message) {
    super(message);
    this.name = 'InvalidEventPayload';
  }
}

export class ValidationError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ValidationError';
  }
}

export class RetryError extends Error {
  constructor(message) {
    super(message);
    this.name = 'RetryError';
  }
}

export const errorClasses = [
  ['EventNotSupported', EventNotSupported],
  ['InvalidEventPayload', InvalidEventPayload],
  ['ValidationError', ValidationError],
  ['RetryError', RetryError],
];
