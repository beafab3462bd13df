// crypto's host half: Node's own crypto module behind a narrow interface of plain values. What the
// isolate holds of a host object (a hash state, a cipher, a key) is an opaque integer handle into one
// bounded table per isolate, never an isolated-vm Reference: a handle names nothing outside its own
// isolate, a handle of the wrong kind or one that was released is refused, and the table is cleared when
// the isolate dies. Unfinished states end with the invocation that made them; key objects live as long
// as the isolate, at most BOUNDS.cryptoKeysPerIsolate of them, the least recently used evicted first (the
// isolate keeps each key's DER form and hands it back when its handle was evicted). Every input is
// size-capped and the CPU-heavy calls (pbkdf2, scrypt, big RSA keys) are bounded, so one call cannot park
// the host thread for long.
//
// Bytes cross into the isolate as latin1 strings, as response bodies do (see host-fetch.ts).

import {
  type BinaryLike,
  type Cipher,
  type CipherGCM,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  createSign,
  createVerify,
  type Decipher,
  type DecipherGCM,
  getCiphers,
  getCurves,
  getHashes,
  type Hash,
  type Hmac,
  KeyObject,
  pbkdf2Sync,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  randomBytes,
  randomInt,
  randomUUID,
  type Sign,
  scryptSync,
  sign,
  timingSafeEqual,
  type Verify,
  verify,
  webcrypto,
} from 'node:crypto';
import { BOUNDS } from './bounds.js';

type CryptoKey = webcrypto.CryptoKey;

/** A host object and the invocation whose code made it (0: top-level code, and keys). */
type Entry =
  | { kind: 'hash'; value: Hash; invocation: number }
  | { kind: 'hmac'; value: Hmac; invocation: number }
  | { kind: 'sign'; value: Sign; invocation: number }
  | { kind: 'verify'; value: Verify; invocation: number }
  | { kind: 'cipher'; value: Cipher | Decipher; invocation: number }
  | { kind: 'key'; value: KeyObject; invocation: 0 }
  | { kind: 'cryptoKey'; value: CryptoKey; invocation: 0 };

type StateKind = Exclude<Entry['kind'], 'key' | 'cryptoKey'>;

/** What a host error becomes in the isolate: the same class, message and code as Node's. */
export interface CryptoError {
  error: string;
  name: string;
  code?: string;
}

/** Bytes for the isolate: a latin1 string it turns into bytes itself. */
const binary = (bytes: Buffer | ArrayBuffer) =>
  (bytes instanceof ArrayBuffer ? Buffer.from(bytes) : bytes).toString('latin1');

/** Text Node encoded itself crosses as `{ s }`; bytes as latin1. */
const textOrBytes = (value: string | Buffer) => (typeof value === 'string' ? { s: value } : binary(value));

const HASHES = getHashes();
const CIPHERS = getCiphers();
const CURVES = getCurves();

/** Raised for what the sandbox refuses (a bound, a released handle); shown to user code as a RangeError. */
class Refused extends RangeError {
  readonly code = 'ERR_DFN_CRYPTO_BOUND';
}

function errorOf(err: unknown): CryptoError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { error: err.message, name: err.name, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { error: String(err), name: 'Error' };
}

/** A byte or string input of a bounded size; anything else is left for Node to reject. */
function bounded<T>(value: T): T {
  // A view's whole buffer crossed with it (isolated-vm copies backing stores whole), so that is its size.
  const size =
    typeof value === 'string' ? value.length : value instanceof Uint8Array ? value.buffer.byteLength : 0;
  if (size > BOUNDS.cryptoInputBytes) {
    throw new Refused(`crypto: an input can be at most ${BOUNDS.cryptoInputBytes} bytes`);
  }
  return value;
}

/** Names a key by the isolate: a handle it holds (with the key's DER form), or a value to parse. */
type KeySpec =
  | ['k', number, 'private' | 'public' | 'secret', Uint8Array]
  | ['o', Record<string, unknown>]
  | ['v', unknown];

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
] as const;

/** Asymmetric keys past this many bits make one signature cost the host thread too long. */
function checkKeySize(key: KeyObject): KeyObject {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits !== undefined && bits > BOUNDS.cryptoModulusBits) {
    throw new Refused(`crypto: keys of at most ${BOUNDS.cryptoModulusBits} bits are supported`);
  }
  return key;
}

export class IsolateCrypto {
  /** Unfinished states and keys, in use order (a Map keeps insertion order: a use moves it to the end). */
  private readonly states = new Map<number, Entry>();
  private readonly keys = new Map<number, Entry>();
  private next = 0;
  private closed = false;
  private subtleInFlight = 0;

  /** The synchronous operations (an ivm.Callback): a plain value, or a CryptoError. */
  call(
    invocation: number,
    op: string,
    a?: unknown,
    b?: unknown,
    c?: unknown,
    d?: unknown,
    e?: unknown,
  ): unknown {
    try {
      if (this.closed) throw new Refused('crypto: the isolate was closed');
      return this.perform(Number(invocation) || 0, String(op), a, b, c, d, e);
    } catch (err) {
      return errorOf(err);
    }
  }

  /** Invocations that ended: the states they left unfinished are released. */
  end(ids: readonly number[]): void {
    if (this.states.size === 0) return;
    const ended = new Set(ids);
    for (const [handle, entry] of this.states) if (ended.has(entry.invocation)) this.states.delete(handle);
  }

  /** The isolate died: nothing of it stays. */
  close(): void {
    this.closed = true;
    this.states.clear();
    this.keys.clear();
  }

  /** How many host objects this isolate holds (for tests and bounds). */
  get size(): number {
    return this.states.size + this.keys.size;
  }

  private perform(
    inv: number,
    op: string,
    a: unknown,
    b: unknown,
    c: unknown,
    d: unknown,
    e: unknown,
  ): unknown {
    switch (op) {
      case 'hashes':
        return HASHES;
      case 'ciphers':
        return CIPHERS;
      case 'curves':
        return CURVES;
      case 'hash':
        return this.add(inv, 'hash', createHash(String(a), hashOptions(b)));
      case 'hmac':
        return this.add(inv, 'hmac', createHmac(String(a), this.secretInput(b)));
      case 'copy': {
        const hash = this.state(a, 'hash') as Hash;
        return this.add(inv, 'hash', hash.copy(hashOptions(b)));
      }
      case 'update':
        return this.update(a, b, c, d);
      case 'digest': {
        const entry = this.entry(a, ['hash', 'hmac']);
        this.states.delete(Number(a));
        return binary((entry.value as Hash).digest());
      }
      case 'sign':
        return this.add(inv, 'sign', createSign(String(a), options(b)));
      case 'verify':
        return this.add(inv, 'verify', createVerify(String(a), options(b)));
      case 'signFinal': {
        const signer = this.state(a, 'sign') as Sign;
        this.states.delete(Number(a));
        return binary(signer.sign(this.privateInput(b)));
      }
      case 'verifyFinal': {
        const verifier = this.state(a, 'verify') as Verify;
        this.states.delete(Number(a));
        const signature = bounded(c);
        return typeof signature === 'string' && typeof d === 'string'
          ? verifier.verify(this.publicInput(b), signature, d as never)
          : verifier.verify(this.publicInput(b), signature as Uint8Array);
      }
      case 'signOneShot':
        return binary(sign(nullable(a), bounded(b) as Uint8Array, this.privateInput(c)));
      case 'verifyOneShot':
        return verify(nullable(a), bounded(b) as Uint8Array, this.publicInput(c), bounded(d) as Uint8Array);
      case 'cipher': {
        const make = a ? createDecipheriv : createCipheriv;
        const iv = d === null ? null : (bounded(d) as Uint8Array);
        return this.add(inv, 'cipher', make(String(b), this.secretInput(c), iv, options(e) as never));
      }
      case 'cipherFinal': {
        const cipher = this.state(a, 'cipher') as Cipher;
        return textOrBytes(
          typeof b === 'string' && b !== 'buffer' ? cipher.final(b as never) : cipher.final(),
        );
      }
      case 'timingSafeEqual':
        return timingSafeEqual(bounded(a) as Uint8Array, bounded(b) as Uint8Array);
      case 'setAAD':
        (this.state(a, 'cipher') as CipherGCM).setAAD(bounded(b) as Uint8Array, options(c) as never);
        return true;
      case 'setAuthTag':
        (this.state(a, 'cipher') as DecipherGCM).setAuthTag(bounded(b) as Uint8Array);
        return true;
      case 'getAuthTag':
        return binary((this.state(a, 'cipher') as CipherGCM).getAuthTag());
      case 'setAutoPadding':
        (this.state(a, 'cipher') as Cipher).setAutoPadding(b !== false);
        return true;
      case 'pbkdf2':
        return binary(pbkdf2(a, b, c, d, e));
      case 'scrypt':
        return binary(scrypt(a, b, c, d));
      case 'rsa': {
        const fns = { publicEncrypt, privateDecrypt, privateEncrypt, publicDecrypt } as const;
        const name = String(a) as keyof typeof fns;
        if (!Object.hasOwn(fns, name)) throw new Refused(`unsupported crypto operation ${name}`);
        const key =
          name === 'publicEncrypt' || name === 'publicDecrypt' ? this.publicInput(b) : this.privateInput(b);
        return binary(fns[name](key as never, bounded(c) as Uint8Array));
      }
      case 'randomBytes': {
        const n = Number(a);
        if (!Number.isInteger(n) || n < 0 || n > BOUNDS.randomBytes) {
          throw new RangeError(`randomBytes: size must be 0..${BOUNDS.randomBytes}`);
        }
        return binary(randomBytes(n));
      }
      case 'randomInt':
        return b === undefined ? randomInt(a as number) : randomInt(a as number, b as number);
      case 'randomUUID':
        return randomUUID();
      case 'createKey':
        return this.createKey(String(a) as 'private' | 'public' | 'secret', b);
      case 'keyExport':
        return exported(this.key(a as KeySpec).export(exportOptions(b) as never));
      case 'keyEquals':
        return this.key(a as KeySpec).equals(this.key(b as KeySpec));
      default:
        throw new Refused(`unsupported crypto operation ${op}`);
    }
  }

  private update(handle: unknown, data: unknown, encoding: unknown, outputEncoding: unknown): unknown {
    const entry = this.entry(handle, ['hash', 'hmac', 'sign', 'verify', 'cipher']);
    const input = bounded(data) as BinaryLike;
    if (entry.kind === 'cipher') {
      const inEnc = typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined;
      const outEnc =
        typeof outputEncoding === 'string' && outputEncoding !== 'buffer'
          ? (outputEncoding as BufferEncoding)
          : undefined;
      const cipher = entry.value as Cipher;
      const out =
        typeof input === 'string'
          ? outEnc === undefined
            ? cipher.update(input, inEnc as never)
            : cipher.update(input, inEnc as never, outEnc as never)
          : outEnc === undefined
            ? cipher.update(input as Uint8Array)
            : cipher.update(input as Uint8Array, undefined, outEnc as never);
      return textOrBytes(out);
    }
    if (typeof input === 'string' && typeof encoding === 'string') {
      entry.value.update(input, encoding as BufferEncoding);
    } else {
      (entry.value as Hash).update(input);
    }
    return true;
  }

  private add(invocation: number, kind: StateKind, value: Entry['value']): number {
    if (this.states.size >= BOUNDS.cryptoStatesPerIsolate) {
      throw new Refused(
        `crypto: at most ${BOUNDS.cryptoStatesPerIsolate} hashes, signers and ciphers can be unfinished at once`,
      );
    }
    const handle = ++this.next;
    this.states.set(handle, { kind, value, invocation } as Entry);
    return handle;
  }

  private entry<K extends StateKind>(handle: unknown, kinds: readonly K[]): Extract<Entry, { kind: K }> {
    const entry = this.states.get(Number(handle));
    if (!entry || !(kinds as readonly string[]).includes(entry.kind)) {
      throw new Refused('crypto: this object was released (finished, or its invocation ended)');
    }
    return entry as Extract<Entry, { kind: K }>;
  }

  private state(handle: unknown, kind: StateKind): Entry['value'] {
    return this.entry(handle, [kind]).value;
  }

  private remember(kind: 'key' | 'cryptoKey', value: KeyObject | CryptoKey): number {
    if (this.keys.size >= BOUNDS.cryptoKeysPerIsolate) {
      const oldest = this.keys.keys().next().value as number;
      this.keys.delete(oldest);
    }
    const handle = ++this.next;
    this.keys.set(handle, { kind, value, invocation: 0 } as Entry);
    return handle;
  }

  /** A key the isolate names: its handle while the table has it, else its DER form parsed again. */
  private key(spec: KeySpec): KeyObject {
    if (!Array.isArray(spec) || spec[0] !== 'k')
      throw new TypeError('The "key" argument must be a KeyObject');
    const handle = Number(spec[1]);
    const entry = this.keys.get(handle);
    if (entry?.kind === 'key') {
      this.keys.delete(handle); // most recently used moves to the end
      this.keys.set(handle, entry);
      return entry.value;
    }
    const der = bounded(spec[3]);
    if (!(der instanceof Uint8Array)) throw new Refused('crypto: this key was released');
    const key =
      spec[2] === 'private'
        ? createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })
        : spec[2] === 'public'
          ? createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' })
          : createSecretKey(der);
    return checkKeySize(key);
  }

  /** A key input as Node's functions take it, handles resolved, sizes bounded. */
  private keyInput(spec: unknown): unknown {
    if (!Array.isArray(spec)) throw new TypeError('malformed key');
    if (spec[0] === 'k') return this.key(spec as KeySpec);
    if (spec[0] === 'o') {
      const fields = spec[1] as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      const key = fields.key;
      out.key = Array.isArray(key)
        ? this.keyInput(key)
        : key === null || typeof key !== 'object' || key instanceof Uint8Array
          ? bounded(key)
          : boundedJwk(key);
      for (const name of KEY_FIELDS) if (fields[name] !== undefined) out[name] = bounded(fields[name]);
      return out;
    }
    if (spec[0] === 'v') return bounded(spec[1]);
    throw new TypeError('malformed key');
  }

  private secretInput(spec: unknown): never {
    return this.keyInput(spec) as never;
  }

  private privateInput(spec: unknown): never {
    const key = this.keyInput(spec);
    if (key instanceof KeyObject) return key as never;
    return withCheckedKey(key, createPrivateKey) as never;
  }

  private publicInput(spec: unknown): never {
    const key = this.keyInput(spec);
    if (key instanceof KeyObject) return key as never;
    return withCheckedKey(key, createPublicKey) as never;
  }

  private createKey(kind: 'private' | 'public' | 'secret', spec: unknown) {
    let key: KeyObject;
    const input = this.keyInput(spec);
    if (kind === 'secret') {
      key = createSecretKey(input as never);
    } else if (kind === 'private') {
      key = checkKeySize(createPrivateKey(input as never));
    } else {
      key = checkKeySize(createPublicKey(input as never));
    }
    return this.describe(key);
  }

  /** What the isolate's KeyObject shows, its handle, and its DER form (for a handle evicted later). */
  private describe(key: KeyObject) {
    const der =
      key.type === 'secret'
        ? key.export()
        : key.type === 'private'
          ? key.export({ format: 'der', type: 'pkcs8' })
          : key.export({ format: 'der', type: 'spki' });
    return {
      handle: this.remember('key', key),
      type: key.type,
      asymmetricKeyType: key.asymmetricKeyType,
      asymmetricKeyDetails:
        key.asymmetricKeyDetails === undefined ? undefined : details(key.asymmetricKeyDetails),
      symmetricKeySize: key.symmetricKeySize,
      der: binary(der),
    };
  }

  // --- webcrypto.subtle: asynchronous in Node, so it crosses as an async call (ivm.Reference). ---

  /** One subtle operation; CryptoKeys cross as ['ck', handle, …] (see the isolate's crypto.js). */
  async subtle(op: string, args: unknown): Promise<unknown> {
    if (this.closed) return errorOf(new Refused('crypto: the isolate was closed'));
    if (this.subtleInFlight >= BOUNDS.cryptoSubtleInFlight) {
      return errorOf(new Refused(`crypto: at most ${BOUNDS.cryptoSubtleInFlight} subtle operations at once`));
    }
    this.subtleInFlight++;
    try {
      return await this.subtleOp(String(op), Array.isArray(args) ? args : []);
    } catch (err) {
      return errorOf(err);
    } finally {
      this.subtleInFlight--;
    }
  }

  private async subtleOp(op: string, args: unknown[]): Promise<unknown> {
    const subtle = webcrypto.subtle;
    const [a, b, c, d, e] = args;
    switch (op) {
      case 'digest':
        return { bytes: binary(await subtle.digest(algorithm(a) as never, bounded(b) as Uint8Array)) };
      case 'importKey': {
        const data =
          b === null || typeof b !== 'object' || b instanceof Uint8Array ? bounded(b) : boundedJwk(b);
        const key = await subtle.importKey(
          String(a) as never,
          data as never,
          algorithm(c) as never,
          Boolean(d),
          e as never,
        );
        return this.cryptoKey(key);
      }
      case 'exportKey': {
        const out = await subtle.exportKey(String(a) as never, await this.subtleKey(b));
        return out instanceof ArrayBuffer ? { bytes: binary(out) } : { jwk: out };
      }
      case 'sign':
        return {
          bytes: binary(
            await subtle.sign(algorithm(a) as never, await this.subtleKey(b), bounded(c) as Uint8Array),
          ),
        };
      case 'verify':
        return subtle.verify(
          algorithm(a) as never,
          await this.subtleKey(b),
          bounded(c) as Uint8Array,
          bounded(d) as Uint8Array,
        );
      case 'encrypt':
      case 'decrypt': {
        const fn = op === 'encrypt' ? subtle.encrypt : subtle.decrypt;
        return {
          bytes: binary(
            await fn.call(subtle, algorithm(a) as never, await this.subtleKey(b), bounded(c) as Uint8Array),
          ),
        };
      }
      case 'generateKey': {
        const alg = algorithm(a) as { modulusLength?: number };
        // Generating a large RSA key takes seconds of a thread-pool thread (which DNS lookups share).
        if (Number(alg.modulusLength) > GENERATED_MODULUS_BITS) {
          throw new Refused(`crypto: keys of at most ${GENERATED_MODULUS_BITS} bits can be generated`);
        }
        const out = await subtle.generateKey(alg as never, Boolean(b), c as never);
        if ('privateKey' in out) {
          return {
            pair: [(await this.cryptoKey(out.publicKey)).key, (await this.cryptoKey(out.privateKey)).key],
          };
        }
        return this.cryptoKey(out as CryptoKey);
      }
      case 'deriveBits': {
        const alg = await this.subtleAlgorithm(a);
        if (Number(c) > BOUNDS.randomBytes * 8) {
          throw new Refused(`crypto: at most ${BOUNDS.randomBytes * 8} bits can be derived`);
        }
        return { bytes: binary(await subtle.deriveBits(alg as never, await this.subtleKey(b), c as number)) };
      }
      default:
        throw new Refused(`unsupported crypto.subtle operation ${op}`);
    }
  }

  /** A CryptoKey for the isolate: its handle, what it shows, and its key material to import it again. */
  private async cryptoKey(key: CryptoKey) {
    const object = KeyObject.from(key);
    checkKeySize(object);
    const der =
      key.type === 'secret'
        ? object.export()
        : key.type === 'private'
          ? object.export({ format: 'der', type: 'pkcs8' })
          : object.export({ format: 'der', type: 'spki' });
    return {
      key: {
        handle: this.remember('cryptoKey', key),
        type: key.type,
        extractable: key.extractable,
        algorithm: plainAlgorithm(key.algorithm),
        usages: [...key.usages],
        der: binary(der),
      },
    };
  }

  private async subtleKey(spec: unknown): Promise<CryptoKey> {
    if (!Array.isArray(spec) || spec[0] !== 'ck')
      throw new TypeError("parameter 2 is not of type 'CryptoKey'");
    const handle = Number(spec[1]);
    const entry = this.keys.get(handle);
    if (entry?.kind === 'cryptoKey') {
      this.keys.delete(handle);
      this.keys.set(handle, entry);
      return entry.value;
    }
    // Evicted: imported again from the form the isolate kept, with the same algorithm and usages.
    const [, , type, der, alg, extractable, usages] = spec as [
      string,
      number,
      string,
      Uint8Array,
      unknown,
      boolean,
      string[],
    ];
    const format = type === 'secret' ? 'raw' : type === 'private' ? 'pkcs8' : 'spki';
    return webcrypto.subtle.importKey(
      format,
      bounded(der),
      algorithm(alg) as never,
      Boolean(extractable),
      usages as never,
    );
  }

  /** An algorithm whose `public` (ECDH) is a CryptoKey, and whose PBKDF2 iterations are bounded. */
  private async subtleAlgorithm(a: unknown): Promise<unknown> {
    const alg = algorithm(a) as Record<string, unknown>;
    if (Array.isArray(alg.public)) alg.public = await this.subtleKey(alg.public);
    if (String(alg.name).toUpperCase() === 'PBKDF2' && Number(alg.iterations) > BOUNDS.pbkdf2Work) {
      throw new Refused(`crypto: PBKDF2 can run at most ${BOUNDS.pbkdf2Work} iterations`);
    }
    return alg;
  }
}

/** RSA keys subtle.generateKey may make (bits). */
const GENERATED_MODULUS_BITS = 4_096;

/** createHash's options: an XOF's outputLength is what the digest allocates, so it is bounded too. */
function hashOptions(value: unknown): Record<string, unknown> | undefined {
  const o = options(value);
  if (o && Number(o.outputLength) > BOUNDS.randomBytes) {
    throw new Refused(`crypto: a digest can be at most ${BOUNDS.randomBytes} bytes`);
  }
  return o;
}

/** An options object of plain values (outputLength, authTagLength), or none. */
function options(value: unknown): Record<string, unknown> | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v !== 'object' || v === null) out[k] = v;
  return out;
}

function nullable(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

/** A JWK object: string members only, bounded in all. */
function boundedJwk(value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let chars = 0;
  for (const [k, v] of Object.entries(value as object)) {
    if (typeof v === 'string') chars += v.length;
    out[k] = v;
  }
  if (chars > BOUNDS.cryptoInputBytes) throw new Refused('crypto: a JWK this large is not supported');
  return out;
}

/** A key input that is not yet a KeyObject is parsed first, so its size can be checked before use. */
function withCheckedKey(key: unknown, parse: (input: never) => KeyObject): unknown {
  if (key !== null && typeof key === 'object' && !(key instanceof Uint8Array)) {
    const fields = key as Record<string, unknown>;
    if (fields.key instanceof KeyObject) return fields;
    const { dsaEncoding, padding, saltLength, oaepHash, oaepLabel, ...keyFields } = fields;
    const parsed = checkKeySize(parse(keyFields as never));
    const extra = { dsaEncoding, padding, saltLength, oaepHash, oaepLabel };
    const out: Record<string, unknown> = { key: parsed };
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
    return out;
  }
  return checkKeySize(parse(key as never));
}

function pbkdf2(
  password: unknown,
  salt: unknown,
  iterations: unknown,
  keylen: unknown,
  digest: unknown,
): Buffer {
  const n = Number(iterations);
  const len = Number(keylen);
  // Work is iterations × output blocks (of at least 20 bytes, SHA-1's).
  if (n * Math.ceil(len / 20) > BOUNDS.pbkdf2Work || len > BOUNDS.randomBytes) {
    throw new Refused(
      `crypto: pbkdf2 can run at most ${BOUNDS.pbkdf2Work} iterations × 20-byte output blocks`,
    );
  }
  return pbkdf2Sync(
    bounded(password) as BinaryLike,
    bounded(salt) as BinaryLike,
    iterations as number,
    keylen as number,
    digest as string,
  );
}

function scrypt(password: unknown, salt: unknown, keylen: unknown, opts: unknown): Buffer {
  const o = options(opts) ?? {};
  const N = Number(o.N ?? o.cost ?? 16384);
  const r = Number(o.r ?? o.blockSize ?? 8);
  const p = Number(o.p ?? o.parallelization ?? 1);
  if (N * r * p > BOUNDS.scryptWork || Number(keylen) > BOUNDS.randomBytes) {
    throw new Refused(
      `crypto: scrypt can run at most N × r × p = ${BOUNDS.scryptWork}, for at most ${BOUNDS.randomBytes} bytes`,
    );
  }
  // Node's own default memory cap (32 MiB) is also the most a function may ask for.
  if (o.maxmem !== undefined) o.maxmem = Math.min(Number(o.maxmem), 32 * 1024 * 1024);
  return scryptSync(bounded(password) as BinaryLike, bounded(salt) as BinaryLike, keylen as number, o);
}

function exportOptions(value: unknown): unknown {
  const o = options(value);
  if (o?.cipher !== undefined || o?.passphrase !== undefined) {
    if (typeof o.passphrase === 'string' || o.passphrase instanceof Uint8Array) bounded(o.passphrase);
  }
  return o;
}

/** An exported key: PEM text, DER bytes or a JWK. */
function exported(value: string | Buffer | object): unknown {
  if (typeof value === 'string') return { text: value };
  if (Buffer.isBuffer(value)) return { bytes: binary(value) };
  return { jwk: value };
}

function details(d: NonNullable<KeyObject['asymmetricKeyDetails']>) {
  const out: Record<string, unknown> = {};
  // publicExponent is a bigint in Node; it crosses as its decimal digits.
  for (const [k, v] of Object.entries(d)) out[k] = typeof v === 'bigint' ? { bigint: v.toString() } : v;
  return out;
}

/** A subtle algorithm from the isolate: a name, or a dictionary of plain values and bytes. */
function algorithm(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as object)) {
    if (v instanceof Uint8Array) out[k] = bounded(v);
    else if (k === 'hash' && v !== null && typeof v === 'object') out[k] = algorithm(v);
    else if (k === 'public' && Array.isArray(v)) out[k] = v;
    else if (typeof v !== 'object' || v === null) out[k] = v;
  }
  return out;
}

/** A CryptoKey's algorithm as plain values (publicExponent as a byte array). */
function plainAlgorithm(alg: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(alg)) {
    if (v instanceof Uint8Array) out[k] = [...v];
    else if (v !== null && typeof v === 'object') out[k] = plainAlgorithm(v);
    else out[k] = v;
  }
  return out;
}
