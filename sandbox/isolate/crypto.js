// crypto: Node's crypto module as the function sees it, performed by the host's own implementation
// (sandbox/host-crypto.ts). Host objects (hash states, signers, ciphers, keys) are opaque integer handles
// kept in private fields here; what crosses is plain values, bytes as Uint8Array copies one way and latin1
// strings the other (see host-fetch.ts on why not as ArrayBuffers). Sizes are checked here before
// anything is copied, and again on the host.

import { nodeBuffer } from './buffer.js';
import { asyncCall, host } from './host.js';
import {
  byteLengthOf,
  ErrorCtor,
  isArray,
  isView,
  named,
  objectFreeze,
  objectKeys,
  RangeErrorCtor,
  resolved,
  StringCtor,
  TypeErrorCtor,
  Uint8ArrayCtor,
  viewByteLength,
  viewCopy,
  whenSettled,
} from './intrinsics.js';
import { current } from './invocation.js';

const ERROR_CLASSES = { TypeError: TypeErrorCtor, RangeError: RangeErrorCtor };

/** A host error as Node raised it: the same class, message and code. */
function raised(value) {
  const Ctor = ERROR_CLASSES[value.name] ?? ErrorCtor;
  const err = new Ctor(value.error);
  if (value.name && !ERROR_CLASSES[value.name] && value.name !== 'Error') err.name = value.name;
  if (value.code !== undefined) err.code = value.code;
  return err;
}

function isError(value) {
  return value !== null && typeof value === 'object' && typeof value.error === 'string';
}

/** One synchronous host call; bytes come back as `{ b: latin1 }`, see out(). */
function call(op, a, b, c, d, e) {
  const value = host.crypto(current, op, a, b, c, d, e);
  if (isError(value)) throw raised(value);
  return value;
}

const bytesOf = (latin1) => nodeBuffer().from(latin1, 'latin1');

/** A host answer that is bytes, as a Buffer, or as a string in `encoding` (Node's Buffer#toString). */
function out(latin1, encoding) {
  const buf = bytesOf(latin1);
  return encoding === undefined || encoding === 'buffer' ? buf : buf.toString(encoding);
}

function tooLarge(bytes) {
  const max = host.config.bounds.cryptoInputBytes;
  if (bytes > max) {
    const err = new RangeErrorCtor(`crypto: an input can be at most ${max} bytes`);
    err.code = 'ERR_DFN_CRYPTO_BOUND';
    throw err;
  }
}

/** A host answer that is text already (`{ s }`), or bytes. */
function text(value, encoding) {
  return typeof value === 'object' && value !== null && typeof value.s === 'string'
    ? value.s
    : out(value, encoding);
}

/**
 * Data for the host: a string stays a string (Node decodes it with the encoding given), any view or
 * ArrayBuffer becomes a Uint8Array over the same bytes; anything else crosses as it is, for Node to reject.
 */
function data(value) {
  if (typeof value === 'string') {
    tooLarge(value.length);
    return value;
  }
  if (value instanceof ArrayBuffer) {
    tooLarge(value.byteLength);
    return viewCopy(new Uint8ArrayCtor(value));
  }
  if (isView(value)) {
    tooLarge(viewByteLength(value));
    return viewCopy(value);
  }
  // Something Node rejects: only its kind crosses ("Received an instance of Object").
  if (value !== null && typeof value === 'object') return isArray(value) ? [] : {};
  if (typeof value === 'function' || typeof value === 'symbol') return {};
  return value;
}

/** Bytes for the host: strings in `encoding` become bytes here (as Node does for keys, IVs, salts). */
function bytes(value, encoding) {
  if (typeof value === 'string') {
    tooLarge(value.length);
    return encoding === undefined ? value : new Uint8ArrayCtor(nodeBuffer().from(value, encoding));
  }
  return data(value);
}

/** Plain option values (outputLength, authTagLength, N, r, p, maxmem, …). */
function plain(options) {
  if (options === null || typeof options !== 'object') return undefined;
  const o = {};
  const keys = objectKeys(options);
  for (let i = 0; i < keys.length && i < 32; i++) {
    const v = options[keys[i]];
    if (v === null || typeof v !== 'object') o[keys[i]] = typeof v === 'function' ? undefined : v;
  }
  return o;
}

// --- key objects ---

/** What this module passes to the KeyObject and CryptoKey constructors; user code cannot. */
const MAKE = objectFreeze({});

const KEY_FIELDS = [
  'format',
  'type',
  'passphrase',
  'encoding',
  'dsaEncoding',
  'padding',
  'saltLength',
  'oaepHash',
  'oaepLabel',
];

export class KeyObject {
  #spec;
  #type;
  #asymmetricKeyType;
  #details;
  #size;
  constructor(type, described, token) {
    // Only this module makes key objects: a handle user code picked never reaches the host as a key's.
    if (token !== MAKE) throw new TypeErrorCtor('Illegal constructor');
    this.#type = type;
    this.#spec = ['k', described.handle, type, bytesOf(described.der)];
    this.#asymmetricKeyType = described.asymmetricKeyType;
    this.#details =
      described.asymmetricKeyDetails === undefined ? undefined : keyDetails(described.asymmetricKeyDetails);
    this.#size = described.symmetricKeySize;
  }
  static specOf(key) {
    return #spec in key ? key.#spec : undefined;
  }
  get type() {
    return this.#type;
  }
  get asymmetricKeyType() {
    return this.#asymmetricKeyType;
  }
  get asymmetricKeyDetails() {
    return this.#details;
  }
  get symmetricKeySize() {
    return this.#size;
  }
  export(options) {
    const o = plain(options);
    if (o && o.passphrase !== undefined && typeof o.passphrase !== 'string')
      o.passphrase = data(options.passphrase);
    const value = call('keyExport', this.#spec, o);
    if (value.text !== undefined) return value.text;
    if (value.bytes !== undefined) return bytesOf(value.bytes);
    return value.jwk;
  }
  equals(other) {
    const spec = other instanceof KeyObject ? KeyObject.specOf(other) : undefined;
    if (spec === undefined) {
      const err = new TypeErrorCtor('The "otherKeyObject" argument must be an instance of KeyObject.');
      err.code = 'ERR_INVALID_ARG_TYPE';
      throw err;
    }
    return call('keyEquals', this.#spec, spec);
  }
}

function keyDetails(details) {
  const out = {};
  const keys = objectKeys(details);
  for (let i = 0; i < keys.length; i++) {
    const v = details[keys[i]];
    out[keys[i]] = v !== null && typeof v === 'object' && typeof v.bigint === 'string' ? BigInt(v.bigint) : v;
  }
  return objectFreeze(out);
}

// Node's class names, which user code sees in `key.constructor.name`.
named(KeyObject, 'KeyObject');
class SecretKeyObject extends KeyObject {}
class PublicKeyObject extends KeyObject {}
class PrivateKeyObject extends KeyObject {}
const KEY_CLASSES = { secret: SecretKeyObject, public: PublicKeyObject, private: PrivateKeyObject };

/**
 * A key as the host takes it: a KeyObject by its handle, an options object field by field, or a value.
 * User values are always wrapped, so nothing user code builds can pass for a handle.
 */
function keyInput(key) {
  if (key instanceof KeyObject) {
    const spec = KeyObject.specOf(key);
    if (spec !== undefined) return spec;
  }
  if (key !== null && typeof key === 'object' && !isView(key) && !(key instanceof ArrayBuffer)) {
    const fields = {};
    const inner = key.key;
    fields.key =
      inner instanceof KeyObject
        ? keyInput(inner)
        : inner !== null && typeof inner === 'object' && !isView(inner) && !(inner instanceof ArrayBuffer)
          ? jwk(inner)
          : bytes(inner);
    for (let i = 0; i < KEY_FIELDS.length; i++) {
      const v = key[KEY_FIELDS[i]];
      if (v !== undefined)
        fields[KEY_FIELDS[i]] = typeof v === 'string' || typeof v === 'number' ? v : data(v);
    }
    return ['o', fields];
  }
  return ['v', bytes(key)];
}

/** A JWK: its string and number members. */
function jwk(value) {
  const o = {};
  const keys = objectKeys(value);
  for (let i = 0; i < keys.length && i < 32; i++) {
    const v = value[keys[i]];
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') o[keys[i]] = v;
    else if (isArray(v)) o[keys[i]] = v.slice(0, 16).map(StringCtor);
  }
  return o;
}

function makeKey(kind, input) {
  const described = call('createKey', kind, keyInput(input));
  return new KEY_CLASSES[described.type](described.type, described, MAKE);
}

// --- hashes, HMACs, signers, ciphers ---

const FINALIZED = () => {
  const err = new ErrorCtor('Digest already called');
  err.code = 'ERR_CRYPTO_HASH_FINALIZED';
  return err;
};

class Hash {
  #handle;
  #done = false;
  constructor(algorithm, options, from) {
    this.#handle = from === undefined ? call('hash', StringCtor(algorithm), plain(options)) : from;
  }
  update(input, encoding) {
    if (this.#done) throw FINALIZED();
    call('update', this.#handle, data(input), encoding);
    return this;
  }
  digest(encoding) {
    if (this.#done) throw FINALIZED();
    this.#done = true;
    return out(call('digest', this.#handle), encoding);
  }
  copy(options) {
    if (this.#done) throw FINALIZED();
    return new Hash(undefined, undefined, call('copy', this.#handle, plain(options)));
  }
}

named(Hash, 'Hash');

class Hmac {
  #handle;
  #done = false;
  constructor(algorithm, key, options) {
    const input = key instanceof KeyObject ? keyInput(key) : ['v', bytes(key, options?.encoding)];
    this.#handle = call('hmac', StringCtor(algorithm), input);
  }
  update(input, encoding) {
    if (this.#done) throw FINALIZED();
    call('update', this.#handle, data(input), encoding);
    return this;
  }
  digest(encoding) {
    // Node's Hmac gives an empty digest when called again.
    if (this.#done) return out('', encoding);
    this.#done = true;
    return out(call('digest', this.#handle), encoding);
  }
}

class Sign {
  #handle;
  constructor(algorithm, options) {
    this.#handle = call('sign', StringCtor(algorithm), plain(options));
  }
  update(input, encoding) {
    call('update', this.#handle, data(input), encoding);
    return this;
  }
  sign(privateKey, encoding) {
    return out(call('signFinal', this.#handle, keyInput(privateKey)), encoding);
  }
}

class Verify {
  #handle;
  constructor(algorithm, options) {
    this.#handle = call('verify', StringCtor(algorithm), plain(options));
  }
  update(input, encoding) {
    call('update', this.#handle, data(input), encoding);
    return this;
  }
  verify(publicKey, signature, encoding) {
    return call('verifyFinal', this.#handle, keyInput(publicKey), data(signature), encoding);
  }
}

class Cipheriv {
  #handle;
  constructor(decipher, algorithm, key, iv, options) {
    const k = key instanceof KeyObject ? keyInput(key) : ['v', data(key)];
    this.#handle = call(
      'cipher',
      decipher,
      StringCtor(algorithm),
      k,
      iv === null ? null : data(iv),
      plain(options),
    );
  }
  // Strings in and out are Node's to decode and encode: a character split across two updates comes out whole.
  update(input, inputEncoding, outputEncoding) {
    return text(call('update', this.#handle, data(input), inputEncoding, outputEncoding), outputEncoding);
  }
  final(outputEncoding) {
    return text(call('cipherFinal', this.#handle, outputEncoding), outputEncoding);
  }
  setAAD(buffer, options) {
    call('setAAD', this.#handle, data(buffer), plain(options));
    return this;
  }
  setAuthTag(tag, encoding) {
    call('setAuthTag', this.#handle, bytes(tag, encoding));
    return this;
  }
  getAuthTag() {
    return bytesOf(call('getAuthTag', this.#handle));
  }
  setAutoPadding(autoPadding) {
    call('setAutoPadding', this.#handle, autoPadding !== false);
    return this;
  }
}
// Node's names for them.
class Decipheriv extends Cipheriv {}

// --- randomness ---

/** Web Crypto's error for a request over 65,536 bytes (a DOMException in browsers). */
function quotaExceeded(n, max) {
  const err = new ErrorCtor(
    `Failed to execute 'getRandomValues' on 'Crypto': The ArrayBufferView's byte length (${n}) exceeds the number of bytes of entropy available via this API (${max}).`,
  );
  err.name = 'QuotaExceededError';
  err.code = 22;
  return err;
}

const INTEGER_ARRAYS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
];

function randomBytesSync(size) {
  const n = Number(size);
  const max = host.config.bounds.randomBytes;
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new RangeErrorCtor(`randomBytes: size must be 0..${max}`);
  return bytesOf(call('randomBytes', n));
}

function getRandomValues(array) {
  let integer = false;
  for (let i = 0; i < INTEGER_ARRAYS.length; i++) if (array instanceof INTEGER_ARRAYS[i]) integer = true;
  if (!integer || !isView(array)) {
    throw new TypeErrorCtor(
      "Failed to execute 'getRandomValues' on 'Crypto': The provided ArrayBufferView is not an integer array type.",
    );
  }
  // The typed array's own length, not a `byteLength` user code may have defined on it.
  const n = byteLengthOf(array);
  const max = host.config.bounds.randomBytes;
  if (n > max) throw quotaExceeded(n, max);
  new Uint8ArrayCtor(array.buffer, array.byteOffset, n).set(bytesOf(call('randomBytes', n)));
  return array;
}

/** Node's callback form of a synchronous operation: errors and results reach `callback` on a later turn. */
function later(callback, compute, nullError = true) {
  if (typeof callback !== 'function') {
    const err = new TypeErrorCtor('The "callback" argument must be of type function.');
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  let result;
  let error;
  try {
    result = compute();
  } catch (err) {
    error = err;
  }
  whenSettled(resolved(undefined), () =>
    error ? callback(error) : callback(nullError ? null : undefined, result),
  );
}

// --- webcrypto.subtle: asynchronous on the host, one async call per operation ---

class CryptoKey {
  #spec;
  #type;
  #extractable;
  #algorithm;
  #usages;
  constructor(described, token) {
    if (token !== MAKE) throw new TypeErrorCtor('Illegal constructor');
    const alg = described.algorithm;
    if (isArray(alg.publicExponent)) alg.publicExponent = new Uint8ArrayCtor(alg.publicExponent);
    this.#type = described.type;
    this.#extractable = described.extractable;
    this.#algorithm = objectFreeze(alg);
    this.#usages = described.usages;
    this.#spec = [
      'ck',
      described.handle,
      described.type,
      bytesOf(described.der),
      plainAlgorithm(alg),
      described.extractable,
      described.usages,
    ];
  }
  static specOf(key) {
    return key !== null && typeof key === 'object' && #spec in key ? key.#spec : undefined;
  }
  get type() {
    return this.#type;
  }
  get extractable() {
    return this.#extractable;
  }
  get algorithm() {
    return this.#algorithm;
  }
  get usages() {
    return this.#usages.slice();
  }
}

function plainAlgorithm(alg) {
  const o = {};
  const keys = objectKeys(alg);
  for (let i = 0; i < keys.length; i++) {
    const v = alg[keys[i]];
    o[keys[i]] = v !== null && typeof v === 'object' && !isView(v) ? plainAlgorithm(v) : v;
  }
  return o;
}

/** An algorithm for the host: a name, or its members with BufferSources copied and CryptoKeys by handle. */
function algorithmInput(alg) {
  if (alg === null || typeof alg !== 'object') return alg;
  const o = {};
  const keys = objectKeys(alg);
  for (let i = 0; i < keys.length && i < 16; i++) {
    const v = alg[keys[i]];
    if (v instanceof CryptoKey) o[keys[i]] = CryptoKey.specOf(v);
    else if (isView(v) || v instanceof ArrayBuffer) o[keys[i]] = data(v);
    else if (v !== null && typeof v === 'object') o[keys[i]] = algorithmInput(v);
    else o[keys[i]] = v;
  }
  return o;
}

function keySpec(key) {
  const spec = key instanceof CryptoKey ? CryptoKey.specOf(key) : undefined;
  if (spec === undefined) throw new TypeErrorCtor("The provided value is not of type 'CryptoKey'.");
  return spec;
}

function subtleError(value) {
  const err = new ErrorCtor(value.error);
  err.name = value.name === 'Error' ? 'OperationError' : value.name;
  if (value.code !== undefined) err.code = value.code;
  return err;
}

function subtleResult(value) {
  if (isError(value)) throw subtleError(value);
  if (value === null || typeof value !== 'object') return value;
  if (value.bytes !== undefined) {
    const buf = bytesOf(value.bytes);
    return buf.buffer.byteLength === buf.length ? buf.buffer : new Uint8ArrayCtor(buf).buffer;
  }
  if (value.jwk !== undefined) return value.jwk;
  if (value.key !== undefined) return new CryptoKey(value.key, MAKE);
  if (value.pair !== undefined)
    return { publicKey: new CryptoKey(value.pair[0], MAKE), privateKey: new CryptoKey(value.pair[1], MAKE) };
  return value;
}

async function subtleCall(op, args) {
  return subtleResult(await host.subtle.apply(undefined, [op, args], asyncCall));
}

const subtle = objectFreeze({
  digest: async (alg, input) => subtleCall('digest', [algorithmInput(alg), data(input)]),
  importKey: async (format, keyData, alg, extractable, usages) =>
    subtleCall('importKey', [
      StringCtor(format),
      format === 'jwk' ? jwk(keyData) : data(keyData),
      algorithmInput(alg),
      Boolean(extractable),
      isArray(usages) ? usages.slice(0, 8).map(StringCtor) : [],
    ]),
  exportKey: async (format, key) => subtleCall('exportKey', [StringCtor(format), keySpec(key)]),
  sign: async (alg, key, input) => subtleCall('sign', [algorithmInput(alg), keySpec(key), data(input)]),
  verify: async (alg, key, signature, input) =>
    subtleCall('verify', [algorithmInput(alg), keySpec(key), data(signature), data(input)]),
  encrypt: async (alg, key, input) => subtleCall('encrypt', [algorithmInput(alg), keySpec(key), data(input)]),
  decrypt: async (alg, key, input) => subtleCall('decrypt', [algorithmInput(alg), keySpec(key), data(input)]),
  generateKey: async (alg, extractable, usages) =>
    subtleCall('generateKey', [
      algorithmInput(alg),
      Boolean(extractable),
      isArray(usages) ? usages.slice(0, 8).map(StringCtor) : [],
    ]),
  deriveBits: async (alg, key, length) =>
    subtleCall('deriveBits', [algorithmInput(alg), keySpec(key), length]),
});

// --- the module ---

let lists;
const listOf = (name) => {
  lists ??= {};
  lists[name] ??= call(name);
  return lists[name].slice();
};

export const crypto = objectFreeze({
  createHash: (algorithm, options) => new Hash(algorithm, options),
  createHmac: (algorithm, key, options) => new Hmac(algorithm, key, options),
  createSign: (algorithm, options) => new Sign(algorithm, options),
  createVerify: (algorithm, options) => new Verify(algorithm, options),
  sign: (algorithm, input, key, callback) => {
    const compute = () => bytesOf(call('signOneShot', algorithm ?? null, data(input), keyInput(key)));
    return callback === undefined ? compute() : later(callback, compute);
  },
  verify: (algorithm, input, key, signature, callback) => {
    const compute = () =>
      call('verifyOneShot', algorithm ?? null, data(input), keyInput(key), data(signature));
    return callback === undefined ? compute() : later(callback, compute);
  },
  createCipheriv: (algorithm, key, iv, options) => new Cipheriv(false, algorithm, key, iv, options),
  createDecipheriv: (algorithm, key, iv, options) => new Decipheriv(true, algorithm, key, iv, options),
  publicEncrypt: (key, buffer) => bytesOf(call('rsa', 'publicEncrypt', keyInput(key), data(buffer))),
  privateDecrypt: (key, buffer) => bytesOf(call('rsa', 'privateDecrypt', keyInput(key), data(buffer))),
  privateEncrypt: (key, buffer) => bytesOf(call('rsa', 'privateEncrypt', keyInput(key), data(buffer))),
  publicDecrypt: (key, buffer) => bytesOf(call('rsa', 'publicDecrypt', keyInput(key), data(buffer))),
  createPrivateKey: (key) => makeKey('private', key),
  createPublicKey: (key) => makeKey('public', key),
  createSecretKey: (key, encoding) =>
    makeKey('secret', typeof key === 'string' ? bytes(key, encoding ?? 'utf8') : key),
  KeyObject,
  pbkdf2Sync: (password, salt, iterations, keylen, digest) =>
    bytesOf(call('pbkdf2', data(password), data(salt), iterations, keylen, digest)),
  pbkdf2: (password, salt, iterations, keylen, digest, callback) =>
    later(callback, () => bytesOf(call('pbkdf2', data(password), data(salt), iterations, keylen, digest))),
  scryptSync: (password, salt, keylen, options) =>
    bytesOf(call('scrypt', data(password), data(salt), keylen, plain(options))),
  scrypt: (password, salt, keylen, options, callback) => {
    const cb = typeof options === 'function' ? options : callback;
    const o = typeof options === 'function' ? undefined : plain(options);
    later(cb, () => bytesOf(call('scrypt', data(password), data(salt), keylen, o)));
  },
  timingSafeEqual: (a, b) => call('timingSafeEqual', data(a), data(b)),
  randomBytes: (size, callback) =>
    callback === undefined ? randomBytesSync(size) : later(callback, () => randomBytesSync(size)),
  randomInt: (min, max, callback) => {
    // Node's randomInt calls back with an undefined error, its other callbacks with null.
    if (typeof max === 'function') return later(max, () => call('randomInt', min), false);
    if (typeof callback === 'function') return later(callback, () => call('randomInt', min, max), false);
    return max === undefined ? call('randomInt', min) : call('randomInt', min, max);
  },
  randomUUID: () => call('randomUUID'),
  getRandomValues,
  getHashes: () => listOf('hashes'),
  getCiphers: () => listOf('ciphers'),
  getCurves: () => listOf('curves'),
  constants: objectFreeze({
    RSA_PKCS1_PADDING: 1,
    RSA_NO_PADDING: 3,
    RSA_PKCS1_OAEP_PADDING: 4,
    RSA_PKCS1_PSS_PADDING: 6,
    RSA_PSS_SALTLEN_DIGEST: -1,
    RSA_PSS_SALTLEN_MAX_SIGN: -2,
    RSA_PSS_SALTLEN_AUTO: -2,
  }),
  webcrypto: objectFreeze({ subtle, getRandomValues, randomUUID: () => call('randomUUID'), CryptoKey }),
  subtle,
});
