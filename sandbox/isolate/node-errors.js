// Node's coded errors (`RangeError [ERR_OUT_OF_RANGE]: …`) for the globals that copy Node's behaviour
// (Buffer, TextDecoder): same class, `code`, message and `String(err)`, so a function that logs or
// tests them sees what it would under Node.

import { defineProperty, isInteger, RangeErrorCtor, StringCtor, TypeErrorCtor } from './intrinsics.js';

function coded(Ctor, code, message) {
  const err = new Ctor(message);
  // The name carries the code while V8 formats the stack (on first read), as Node's errors do.
  defineProperty(err, 'name', { value: `${err.name} [${code}]`, configurable: true, writable: true });
  err.stack;
  delete err.name;
  // Defined, not assigned: a setter user code put on the error class's prototype must not see it.
  defineProperty(err, 'code', { value: code, writable: true, enumerable: true, configurable: true });
  defineProperty(err, 'toString', {
    value() {
      return `${this.name} [${code}]: ${this.message}`;
    },
    configurable: true,
    writable: true,
  });
  return err;
}

function withSeparators(digits) {
  let out = '';
  let i = digits.length;
  const start = digits[0] === '-' ? 1 : 0;
  for (; i >= start + 4; i -= 3) out = `_${digits.slice(i - 3, i)}${out}`;
  return `${digits.slice(0, i)}${out}`;
}

/** How Node's ERR_INVALID_ARG_TYPE shows the value it received. */
function received(value) {
  if (value === null || value === undefined) return ` Received ${value}`;
  if (typeof value === 'function') return ` Received function ${value.name}`;
  if (typeof value === 'object') {
    const name = value.constructor?.name;
    return name ? ` Received an instance of ${name}` : ' Received [Object: null prototype]';
  }
  let shown = typeof value === 'string' ? `'${value.length > 28 ? `${value.slice(0, 25)}...` : value}'` : '';
  if (typeof value !== 'string') shown = StringCtor(value) + (typeof value === 'bigint' ? 'n' : '');
  return ` Received type ${typeof value} (${shown})`;
}

/** `name` is quoted as Node quotes an argument's name; one that says it is an argument is not. */
export const invalidArgType = (name, expected, value) =>
  coded(
    TypeErrorCtor,
    'ERR_INVALID_ARG_TYPE',
    `The ${name.endsWith(' argument') ? name : `"${name}" argument`} must be ${expected}.${received(value)}`,
  );

/**
 * Node's own ERR_INVALID_URL, which its href setter throws (the URL constructor's comes from the parser: a
 * plain TypeError with the same code and input, which host.js hostResult builds).
 */
export function invalidUrl(input) {
  const err = coded(TypeErrorCtor, 'ERR_INVALID_URL', 'Invalid URL');
  defineProperty(err, 'input', { value: input, writable: true, enumerable: true, configurable: true });
  return err;
}

export const unknownEncoding = (encoding) =>
  coded(TypeErrorCtor, 'ERR_UNKNOWN_ENCODING', `Unknown encoding: ${encoding}`);

export const invalidBufferSize = (bits) =>
  coded(RangeErrorCtor, 'ERR_INVALID_BUFFER_SIZE', `Buffer size must be a multiple of ${bits}`);

export function outOfRange(name, range, value) {
  // Node shows the value through util.inspect: -0 as -0, a string quoted.
  let shown = Object.is(value, -0) ? '-0' : typeof value === 'string' ? `'${value}'` : StringCtor(value);
  if (isInteger(value) && Math.abs(value) > 2 ** 32) shown = withSeparators(shown);
  else if (typeof value === 'bigint') {
    shown = StringCtor(value);
    if (value > 2n ** 32n || value < -(2n ** 32n)) shown = withSeparators(shown);
    shown += 'n';
  }
  return coded(
    RangeErrorCtor,
    'ERR_OUT_OF_RANGE',
    `The value of "${name}" is out of range. It must be ${range}. Received ${shown}`,
  );
}

export const bufferOutOfBounds = () =>
  coded(RangeErrorCtor, 'ERR_BUFFER_OUT_OF_BOUNDS', 'Attempt to access memory outside buffer bounds');

export const encodingNotSupported = (label) =>
  coded(RangeErrorCtor, 'ERR_ENCODING_NOT_SUPPORTED', `The "${label}" encoding is not supported`);

export const invalidEncodedData = (encoding) =>
  coded(
    TypeErrorCtor,
    'ERR_ENCODING_INVALID_ENCODED_DATA',
    `The encoded data was not valid for encoding ${encoding}`,
  );

/** Node's check of a read or write offset over `size` bytes (lib/internal/buffer.js boundsError). */
export function checkOffset(offset, size, length) {
  if (typeof offset !== 'number') throw invalidArgType('offset', 'of type number', offset);
  if (Math.floor(offset) !== offset) throw outOfRange('offset', 'an integer', offset);
  if (length - size < 0) throw bufferOutOfBounds();
  if (offset < 0 || offset > length - size)
    throw outOfRange('offset', `>= 0 and <= ${length - size}`, offset);
}
