// Fixed bounds on what user code can make the sandbox hold or do, in the isolate and on the host on its
// behalf. One table: the host enforces it, and hands the in-isolate part to the prelude (config.bounds).

export const BOUNDS = {
  /** Pending setTimeouts of one invocation, and of one isolate (all invocations and top-level code). */
  timersPerInvocation: 1_000,
  timersPerIsolate: 5_000,
  /** Host timers per isolate backing setTimeouts (a backstop behind timersPerIsolate). */
  hostTimersPerIsolate: 6_000,
  /** Host timers per isolate for the sandbox's own sleeps (cache waiters' turns). */
  internalSleepsPerIsolate: 50_000,
  /** fetch calls one invocation may make, in all. */
  fetchesPerInvocation: 1_000,
  /** Requests of one isolate crossing to the host at once (the rest wait in the isolate). */
  fetchesInFlightPerIsolate: 64,
  /** Requests of one isolate on the network at once (the rest wait on the host). */
  fetchesOnNetworkPerIsolate: 32,
  /** Request URL length (characters) and all request headers (names and values, UTF-16 units). */
  fetchUrlChars: 16_384,
  fetchHeaderChars: 65_536,
  fetchHeaderCount: 256,
  /**
   * A request method (characters). HTTP methods are short tokens (WebDAV's longest, BASELINE-CONTROL, has
   * 16); without a bound a method of megabytes crossed to the host and was sent, outside every other
   * request bound.
   */
  fetchMethodChars: 128,
  /** A request body (bytes), and the request bodies of one isolate crossing to the host at once. */
  fetchRequestBodyBytes: 8 * 1024 * 1024,
  fetchRequestBytesInFlight: 16 * 1024 * 1024,
  /** Response bytes the host holds for one isolate at once, before they cross into it. */
  fetchResponseBytesInFlight: 32 * 1024 * 1024,
  /** Request traces kept per invocation; later requests are counted, not traced (requestsNotTraced). */
  tracesPerInvocation: 100,
  /**
   * Bytes of request traces the host keeps raw (2 per character: V8's two-byte strings, plus a little per
   * trace and header), per invocation and per isolate, from a request's end until its invocation's report
   * takes them; a request past either is counted, not traced. They are kept whole until then (redacted
   * first, then cut, so no secret is cut in two), so without these a request's full URL and headers
   * (~160 KiB at the request bounds) times 100 per invocation times a micro-batch of 128 ran the sandbox
   * process's 256 MiB heap out. 1 MiB holds 100 ordinary traces (~1–4 KiB each) several times over and at
   * least 6 of the largest; 16 MiB per isolate holds 16 invocations at their whole budget, or thousands of
   * ordinary traces, and keeps the host's holdings for one isolate (with the response and request-body
   * bounds) well inside that heap.
   */
  traceBytesPerInvocation: 1024 * 1024,
  traceBytesPerIsolate: 16 * 1024 * 1024,
  /** A trace's URL, each header value and its error, after redaction (characters). */
  traceUrlChars: 2_048,
  traceHeaderChars: 1_024,
  traceHeaderCount: 64,
  /** Sockets per destination host (busy or idle, kept alive), and how long an idle one is kept (ms). */
  socketsPerHost: 32,
  idleSocketMs: 15_000,
  /** Sockets of one isolate across all destination hosts (open or idle), so many hosts cannot add up. */
  socketsPerIsolate: 256,
  /** Web Crypto's limit on getRandomValues (bytes); randomBytes has the same. */
  randomBytes: 65_536,
  /** One input of one crypto or zlib call: data hashed, signed or ciphered per update, a key (bytes). */
  cryptoInputBytes: 16 * 1024 * 1024,
  /** Unfinished hashes, HMACs, signers and ciphers per isolate (each also ends with its invocation). */
  cryptoStatesPerIsolate: 1_024,
  /** Key objects and CryptoKeys the host keeps per isolate; the least recently used is evicted past it. */
  cryptoKeysPerIsolate: 256,
  /** crypto.subtle operations of one isolate in flight at once. */
  cryptoSubtleInFlight: 64,
  /** RSA and DSA keys (bits): a signature with a larger one holds the host thread too long. */
  cryptoModulusBits: 8_192,
  /** pbkdf2: iterations × 20-byte output blocks (~0.5 s of one core), and scrypt's N × r × p (~0.5 s). */
  pbkdf2Work: 1_000_000,
  scryptWork: 2 ** 20,
  /** zlib: the most one call may produce (bytes), so a small bomb cannot inflate into the host's memory. */
  zlibOutputBytes: 32 * 1024 * 1024,
  /** A URL handed to the URL parser (characters). */
  urlChars: 65_536,
  /** Console output the isolate keeps per invocation before the host redacts and cuts it to logBytes. */
  rawLogFactor: 4,
  /** One console argument, and an error message, as the isolate keeps them (characters). */
  logPartChars: 65_536,
  errorMessageChars: 16_384,
} as const;

export type Bounds = typeof BOUNDS;
