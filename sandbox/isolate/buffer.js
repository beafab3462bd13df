// Buffer: the `buffer` package (feross/buffer, what browserify gives browsers), with a thin layer where it
// differs from Node 20 on what functions meet: UTF-8 decoding (one U+FFFD per invalid sequence, not per
// byte), strict hex (stops at the first bad pair, where parseInt took '1g' as 1), base64url, copy and
// equals into a plain Uint8Array, and Node's offset checks and coded errors on reads and writes (the
// package coerces 1.5 or '1' to an offset). It patches the package's own Buffer, which its internals call
// back through (Buffer.from, buf.write, Buffer.isEncoding), so every path sees the same rules.

// The package is wrapped apart, as a function in the prelude's scope that evaluates it (sandbox/prelude.ts
// says why).
/* global __dfnBufferPackage */
import {
  defineProperty,
  isArray,
  isInteger,
  lengthOf,
  objectCreate,
  objectKeys,
  StringCtor,
  Uint8ArrayCtor,
} from './intrinsics.js';
import {
  checkOffset,
  invalidArgType,
  invalidBufferSize,
  outOfRange,
  unknownEncoding,
} from './node-errors.js';
import { utf8Decode } from './text-decoder.js';

const INTEGERS = {
  UInt8: [1, 0, 0xff],
  Int8: [1, -0x80, 0x7f],
  UInt16LE: [2, 0, 0xffff],
  UInt16BE: [2, 0, 0xffff],
  Int16LE: [2, -0x8000, 0x7fff],
  Int16BE: [2, -0x8000, 0x7fff],
  UInt32LE: [4, 0, 0xffffffff],
  UInt32BE: [4, 0, 0xffffffff],
  Int32LE: [4, -0x80000000, 0x7fffffff],
  Int32BE: [4, -0x80000000, 0x7fffffff],
  BigUInt64LE: [8, 0n, 0xffffffffffffffffn],
  BigUInt64BE: [8, 0n, 0xffffffffffffffffn],
  BigInt64LE: [8, -(2n ** 63n), 2n ** 63n - 1n],
  BigInt64BE: [8, -(2n ** 63n), 2n ** 63n - 1n],
};
const INTEGER_KINDS = objectKeys(INTEGERS);
const UINT_ALIASES = objectCreate(null);
for (const kind of [...INTEGER_KINDS, 'UIntLE', 'UIntBE'])
  if (kind.includes('UInt'))
    for (const op of ['read', 'write']) UINT_ALIASES[`${op}${kind}`] = `${op}${kind.replace('UInt', 'Uint')}`;

// Floats through a DataView, as Node's go through a Float32Array: the package's ieee754 writes NaN as
// 0x7f800001 where V8 (and so Node) writes 0x7fc00000.
const DataViewCtor = DataView;
const FLOATS = [
  ['FloatLE', 4, DataView.prototype.getFloat32, DataView.prototype.setFloat32, true],
  ['FloatBE', 4, DataView.prototype.getFloat32, DataView.prototype.setFloat32, false],
  ['DoubleLE', 8, DataView.prototype.getFloat64, DataView.prototype.setFloat64, true],
  ['DoubleBE', 8, DataView.prototype.getFloat64, DataView.prototype.setFloat64, false],
];
const dataViewOf = (buf) => new DataViewCtor(buf.buffer, buf.byteOffset, buf.byteLength);
const VARIABLE_KINDS = [
  ['UIntLE', false],
  ['UIntBE', false],
  ['IntLE', true],
  ['IntBE', true],
];
const SWAPS = [
  ['swap16', 16],
  ['swap32', 32],
  ['swap64', 64],
];
const SEARCHES = [
  ['indexOf', true],
  ['lastIndexOf', false],
];
const ALLOCATORS = ['alloc', 'allocUnsafe', 'allocUnsafeSlow'];

/** Defines a method as the package and Node assign theirs, without [[Set]] (see nodeBuffer). */
function method(target, name, fn) {
  defineProperty(target, name, { value: fn, writable: true, enumerable: true, configurable: true });
}

const typedArraySet = Uint8Array.prototype.set;
// biome-ignore lint/suspicious/noGlobalIsFinite: the coercing check the package uses to tell write()'s overloads
const globalIsFinite = globalThis.isFinite;

/** Node's encoding names, lower-cased (lib/internal/util.js normalizeEncoding), or undefined. */
function normalize(encoding) {
  const e = StringCtor(encoding).toLowerCase();
  switch (e) {
    case 'utf8':
    case 'utf-8':
      return 'utf8';
    case 'ucs2':
    case 'ucs-2':
    case 'utf16le':
    case 'utf-16le':
      return 'utf16le';
    case 'latin1':
    case 'binary':
      return 'latin1';
    case 'base64':
    case 'base64url':
    case 'hex':
    case 'ascii':
      return e;
    default:
      return undefined;
  }
}

/** The longest run of whole hex pairs at the start: where Node's hex decoder stops. */
const hexPrefix = (s) => /^(?:[0-9a-fA-F]{2})*/.exec(s)[0];

/** A string as the package should decode it: hex cut where Node stops. */
function packageString(string, encoding) {
  return normalize(encoding ?? 'utf8') === 'hex' ? hexPrefix(StringCtor(string)) : string;
}

/** An encoding as the package should read it: base64url as base64 (its decoder takes both alphabets). */
function packageEncoding(encoding) {
  return normalize(encoding ?? 'utf8') === 'base64url' ? 'base64' : encoding;
}

/** Patches the package's Buffer and returns it (on first use: see nodeBuffer). */
function install(NodeBuffer) {
  const proto = NodeBuffer.prototype;
  const base = {
    from: NodeBuffer.from,
    concat: NodeBuffer.concat,
    byteLength: NodeBuffer.byteLength,
    toString: proto.toString,
    write: proto.write,
    equals: proto.equals,
  };
  method(NodeBuffer, 'isEncoding', function isEncoding(encoding) {
    return typeof encoding === 'string' && encoding.length !== 0 && normalize(encoding) !== undefined;
  });

  /** Node's estimate for base64 (lib/buffer.js base64ByteLength): from the length, not the decoded bytes. */
  function base64ByteLength(s) {
    let n = s.length;
    if (n > 0 && s.charCodeAt(n - 1) === 0x3d) n--;
    if (n > 1 && s.charCodeAt(n - 1) === 0x3d) n--;
    return (n * 3) >>> 2;
  }

  method(NodeBuffer, 'byteLength', function byteLength(string, encoding) {
    if (typeof string !== 'string') {
      if (ArrayBuffer.isView(string) || string instanceof ArrayBuffer) return string.byteLength;
      throw invalidArgType('string', 'of type string or an instance of Buffer or ArrayBuffer', string);
    }
    const e = normalize(encoding ?? 'utf8');
    if (e === 'base64' || e === 'base64url') return base64ByteLength(string);
    return base.byteLength(string, e ?? 'utf8');
  });

  const FIRST_ARGUMENT =
    'of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object';

  method(NodeBuffer, 'from', function from(value, encodingOrOffset, length) {
    if (typeof value === 'string') {
      if (
        typeof encodingOrOffset === 'string' &&
        encodingOrOffset !== '' &&
        normalize(encodingOrOffset) === undefined
      )
        throw unknownEncoding(encodingOrOffset);
      return base.from(value, encodingOrOffset, length);
    }
    if (typeof value !== 'object' || value === null)
      throw invalidArgType('first argument', FIRST_ARGUMENT, value);
    try {
      return base.from(value, encodingOrOffset, length);
    } catch (err) {
      // The package's own wording for a value it cannot take; anything else (a RangeError) is Node's too.
      if (err instanceof TypeError && /first argument/.test(err.message))
        throw invalidArgType('first argument', FIRST_ARGUMENT, value);
      throw err;
    }
  });

  /** Node's kMaxLength (2 ** 32 on 64-bit Node 20); the isolate's memory limit comes far sooner. */
  const MAX_LENGTH = 2 ** 32;

  function checkSize(size) {
    if (typeof size !== 'number') throw invalidArgType('size', 'of type number', size);
    if (!(size >= 0 && size <= MAX_LENGTH)) throw outOfRange('size', `>= 0 && <= ${MAX_LENGTH}`, size);
  }

  for (let k = 0; k < ALLOCATORS.length; k++) {
    const name = ALLOCATORS[k];
    const allocate = NodeBuffer[name];
    method(
      NodeBuffer,
      name,
      {
        [name](size, fill, encoding) {
          checkSize(size);
          return allocate(size, fill, encoding);
        },
      }[name],
    );
  }

  method(NodeBuffer, 'concat', function concat(list, length) {
    if (!isArray(list)) throw invalidArgType('list', 'an instance of Array', list);
    for (let i = 0; i < list.length; i++)
      if (!(list[i] instanceof Uint8ArrayCtor))
        throw invalidArgType(`list[${i}]`, 'an instance of Buffer or Uint8Array', list[i]);
    return base.concat(list, length);
  });

  /** The longest start of `s` whose UTF-8 fits in `max` bytes, cut between characters (as Node writes). */
  function utf8Prefix(s, max) {
    let bytes = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      const pair =
        c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      const size = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
      if (bytes + size > max) return s.slice(0, i);
      bytes += size;
      if (pair) i++;
    }
    return s;
  }

  method(proto, 'write', function write(string, offset, length, encoding) {
    // The encoding is the first string among the optional arguments, as in Node's overloads.
    if (typeof offset === 'string') {
      string = packageString(string, offset);
      offset = packageEncoding(offset);
    } else if (typeof length === 'string') {
      string = packageString(string, length);
      length = packageEncoding(length);
    } else {
      string = packageString(string, encoding);
      encoding = packageEncoding(encoding);
      // A length that ends inside a character: Node writes the whole characters before it only. The
      // overload is told as the package tells it (the global isFinite, which coerces).
      const finite = globalIsFinite(offset) && globalIsFinite(length);
      if (typeof string === 'string' && finite && normalize(encoding ?? 'utf8') === 'utf8')
        string = utf8Prefix(string, length >>> 0);
    }
    return base.write.call(this, string, offset, length, encoding);
  });

  function toBase64Url(base64) {
    return base64.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  }

  /** Node's Buffer#toString: its range rules, its encodings, UTF-8 decoded as V8 does. */
  method(
    proto,
    'toString',
    {
      toString(encoding, start, end) {
        const len = this.length;
        // Node tells toString() from toString(undefined, …) by the argument count, and so must we.
        // biome-ignore lint/complexity/noArguments: a rest parameter would change toString.length from Node's 3
        if (arguments.length === 0) return utf8Decode(this);
        if (start <= 0) start = 0;
        else if (start >= len) return '';
        else start = Math.trunc(start) || 0;
        if (end === undefined || end > len) end = len;
        else end = Math.trunc(end) || 0;
        if (end <= start) return '';
        const e = encoding === undefined ? 'utf8' : normalize(encoding);
        if (e === undefined) throw unknownEncoding(encoding);
        if (e === 'utf8')
          return utf8Decode(new Uint8ArrayCtor(this.buffer, this.byteOffset + start, end - start));
        if (e === 'base64url') return toBase64Url(base.toString.call(this, 'base64', start, end));
        return base.toString.call(this, e, start, end);
      },
    }.toString,
  );
  method(proto, 'toLocaleString', proto.toString);

  function asBuffer(view) {
    return NodeBuffer.isBuffer(view) ? view : NodeBuffer.from(view.buffer, view.byteOffset, view.byteLength);
  }

  method(proto, 'equals', function equals(other) {
    if (!(other instanceof Uint8ArrayCtor))
      throw invalidArgType('otherBuffer', 'an instance of Buffer or Uint8Array', other);
    return base.equals.call(this, asBuffer(other));
  });

  /** Node's toInteger for copy's positions: NaN and unsafe values become the default, fractions floor. */
  function toInteger(n, fallback) {
    n = +n;
    if (!Number.isNaN(n) && n >= Number.MIN_SAFE_INTEGER && n <= Number.MAX_SAFE_INTEGER)
      return n % 1 === 0 ? n : Math.floor(n);
    return fallback;
  }

  /** Node's Buffer#copy (lib/buffer.js _copy): any Uint8Array target, its range rules and errors. */
  method(proto, 'copy', function copy(target, targetStart, sourceStart, sourceEnd) {
    if (!(target instanceof Uint8ArrayCtor))
      throw invalidArgType('target', 'an instance of Buffer or Uint8Array', target);
    if (targetStart === undefined) targetStart = 0;
    else {
      targetStart = toInteger(targetStart, 0);
      if (targetStart < 0) throw outOfRange('targetStart', '>= 0', targetStart);
    }
    if (sourceStart === undefined) sourceStart = 0;
    else {
      sourceStart = toInteger(sourceStart, 0);
      if (sourceStart < 0 || sourceStart > this.length)
        throw outOfRange('sourceStart', `>= 0 && <= ${this.length}`, sourceStart);
    }
    if (sourceEnd === undefined) sourceEnd = this.length;
    else {
      sourceEnd = toInteger(sourceEnd, 0);
      if (sourceEnd < 0) throw outOfRange('sourceEnd', '>= 0', sourceEnd);
    }
    if (targetStart >= target.length || sourceStart >= sourceEnd) return 0;
    if (sourceEnd - sourceStart > target.length - targetStart)
      sourceEnd = sourceStart + target.length - targetStart;
    const count = Math.min(sourceEnd - sourceStart, this.length - sourceStart);
    const source = new Uint8ArrayCtor(this.buffer, this.byteOffset + sourceStart, count);
    typedArraySet.call(target, source, targetStart);
    return count;
  });

  // Reads and writes: Node checks the offset (a number, an integer, in range) and the value (in range for
  // the size, with its message), in Node's order, before the package reads or writes.

  /** Node's checkInt: the value in [min, max] for `size` bytes, the range said as Node says it. */
  function checkValue(value, min, max, size) {
    if (value > max || value < min) {
      const n = typeof min === 'bigint' ? 'n' : '';
      const bits = size * 8;
      let range = `>= ${min}${n} and <= ${max}${n}`;
      if (size > 4)
        range =
          min === 0 || min === 0n
            ? `>= 0${n} and < 2${n} ** ${bits}${n}`
            : `>= -(2${n} ** ${bits - 1}${n}) and < 2${n} ** ${bits - 1}${n}`;
      throw outOfRange('value', range, value);
    }
  }

  /** A write's checks in Node's order: one-byte writes look at the offset's type before the value. */
  function checkWrite(buf, value, offset, size, min, max) {
    if (size === 1 && typeof offset !== 'number') throw invalidArgType('offset', 'of type number', offset);
    checkValue(value, min, max, size);
    checkOffset(offset, size, buf.length);
  }

  /** Node's aliases: readUint8 is readUInt8 (the same function), and so on for the unsigned ones. */
  function define(name, fn) {
    method(proto, name, fn);
    if (UINT_ALIASES[name] !== undefined) method(proto, UINT_ALIASES[name], fn);
  }

  for (let k = 0; k < INTEGER_KINDS.length; k++) {
    const kind = INTEGER_KINDS[k];
    const size = INTEGERS[kind][0];
    const min = INTEGERS[kind][1];
    const max = INTEGERS[kind][2];
    const read = proto[`read${kind}`];
    const write = proto[`write${kind}`];
    const big = typeof min === 'bigint';
    define(
      `read${kind}`,
      {
        [`read${kind}`](offset = 0) {
          checkOffset(offset, size, this.length);
          return read.call(this, offset);
        },
      }[`read${kind}`],
    );
    define(
      `write${kind}`,
      {
        [`write${kind}`](value, offset = 0) {
          if (!big) value = +value;
          checkWrite(this, value, offset, size, min, max);
          return write.call(this, value, offset);
        },
      }[`write${kind}`],
    );
  }

  for (let k = 0; k < FLOATS.length; k++) {
    const kind = FLOATS[k][0];
    const size = FLOATS[k][1];
    const get = FLOATS[k][2];
    const set = FLOATS[k][3];
    const little = FLOATS[k][4];
    define(
      `read${kind}`,
      {
        [`read${kind}`](offset = 0) {
          checkOffset(offset, size, this.length);
          return get.call(dataViewOf(this), offset, little);
        },
      }[`read${kind}`],
    );
    define(
      `write${kind}`,
      {
        [`write${kind}`](value, offset = 0) {
          value = +value;
          checkOffset(offset, size, this.length);
          set.call(dataViewOf(this), offset, value, little);
          return offset + size;
        },
      }[`write${kind}`],
    );
  }

  function checkByteLength(byteLength) {
    if (isInteger(byteLength) && byteLength >= 1 && byteLength <= 6) return;
    if (typeof byteLength !== 'number') throw invalidArgType('byteLength', 'of type number', byteLength);
    throw outOfRange('byteLength', isInteger(byteLength) ? '>= 1 and <= 6' : 'an integer', byteLength);
  }

  // Variable-size reads and writes (1 to 6 bytes).
  for (let k = 0; k < VARIABLE_KINDS.length; k++) {
    const kind = VARIABLE_KINDS[k][0];
    const signed = VARIABLE_KINDS[k][1];
    const read = proto[`read${kind}`];
    const write = proto[`write${kind}`];
    define(
      `read${kind}`,
      {
        [`read${kind}`](offset, byteLength) {
          if (offset === undefined) throw invalidArgType('offset', 'of type number', offset);
          checkByteLength(byteLength);
          checkOffset(offset, byteLength, this.length);
          return read.call(this, offset, byteLength);
        },
      }[`read${kind}`],
    );
    define(
      `write${kind}`,
      {
        [`write${kind}`](value, offset, byteLength) {
          checkByteLength(byteLength);
          value = +value;
          const bits = byteLength * 8;
          const min = signed ? -(2 ** (bits - 1)) : 0;
          const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
          checkWrite(this, value, offset, byteLength, min, max);
          return write.call(this, value, offset, byteLength);
        },
      }[`write${kind}`],
    );
  }

  for (let k = 0; k < SWAPS.length; k++) {
    const name = SWAPS[k][0];
    const bits = SWAPS[k][1];
    const swap = proto[name];
    method(
      proto,
      name,
      {
        [name]() {
          if (this.length % (bits / 8) !== 0) throw invalidBufferSize(`${bits}-bits`);
          return swap.call(this);
        },
      }[name],
    );
  }

  /**
   * Where Node finds an empty needle (src/node_buffer.cc IndexOfOffset): at the offset, clamped to the
   * buffer; the package finds none.
   */
  function emptyNeedleAt(buf, byteOffset, forward) {
    if (typeof byteOffset === 'string') byteOffset = undefined;
    byteOffset = +byteOffset;
    if (Number.isNaN(byteOffset)) byteOffset = forward ? 0 : buf.length;
    const offset = Math.trunc(byteOffset);
    if (offset < 0) return offset + buf.length >= 0 ? buf.length + offset : 0;
    return Math.min(offset, buf.length);
  }
  const isEmptyNeedle = (value) => value === '' || (value instanceof Uint8ArrayCtor && value.length === 0);
  for (let k = 0; k < SEARCHES.length; k++) {
    const name = SEARCHES[k][0];
    const forward = SEARCHES[k][1];
    const find = proto[name];
    method(
      proto,
      name,
      {
        [name](value, byteOffset, encoding) {
          if (isEmptyNeedle(value)) return emptyNeedleAt(this, byteOffset, forward);
          return find.call(this, value, byteOffset, encoding);
        },
      }[name],
    );
  }
  method(proto, 'includes', function includes(value, byteOffset, encoding) {
    return this.indexOf(value, byteOffset, encoding) !== -1;
  });

  // Node's Buffer has no `_isBuffer`: the package's marker (its isBuffer reads it) is kept out of for…in.
  defineProperty(proto, '_isBuffer', { value: true, enumerable: false, writable: true, configurable: true });
  return NodeBuffer;
}

// The package itself is evaluated with the prelude, before user code runs: its own code assigns its
// methods, which getters user code put on Object.prototype would intercept.
const bufferPackage = __dfnBufferPackage();
let installed;

/**
 * Node's Buffer, patched on first use: the layer costs an isolate ~0.16 MiB (more than the package),
 * which a function that never touches Buffer (most) does not pay. Patching may run after user code has
 * changed built-ins, so it defines (never assigns) and calls only what the prelude captured.
 */
export function nodeBuffer() {
  installed ??= install(bufferPackage.Buffer);
  return installed;
}

/** A Buffer over the bytes of a Uint8Array, without copying (for the sandbox's own results). */
export const bufferOf = (bytes) => nodeBuffer().from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** A Buffer of the sandbox's (false until Buffer was first used: no Buffer exists before). */
export const isNodeBuffer = (value) => installed !== undefined && value instanceof installed;

/** As Node's util.inspect shows a Buffer (console.log of one): its first 50 bytes in hex. */
export function inspectBuffer(buf) {
  const n = lengthOf(buf);
  let hex = '';
  for (let i = 0; i < n && i < INSPECT_MAX_BYTES; i++)
    hex += (i ? ' ' : '') + (buf[i] < 16 ? '0' : '') + buf[i].toString(16);
  const more = n - INSPECT_MAX_BYTES;
  return `<Buffer ${hex}${more > 0 ? ` ... ${more} more byte${more > 1 ? 's' : ''}` : ''}>`;
}
const INSPECT_MAX_BYTES = 50;
