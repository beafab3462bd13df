// TextDecoder, and the UTF-8 decoder Buffer, fetch bodies and URLSearchParams share: the WHATWG Encoding
// algorithms (one U+FFFD per maximal invalid subpart, as V8 and Node decode), for the encodings
// destination functions meet: utf-8, utf-16le/be and windows-1252 (with its labels latin1, ascii, …).
// Written here rather than bundled: the reference polyfill carries the CJK indexes (~600 KB in every
// isolate) for encodings functions do not use, and these decoders are a page of the standard.

import { fromCharCode, isView, StringCtor, Uint8ArrayCtor } from './intrinsics.js';
import { encodingNotSupported, invalidArgType, invalidEncodedData } from './node-errors.js';

const REPLACEMENT = 0xfffd;
const CHUNK = 8192;

/** Collects UTF-16 code units into a string, a chunk at a time (fromCharCode takes bounded arguments). */
class Units {
  text = '';
  chunk = [];
  push(unit) {
    this.chunk.push(unit);
    if (this.chunk.length >= CHUNK) this.flush();
  }
  pushCodePoint(cp) {
    if (cp < 0x10000) this.push(cp);
    else {
      this.push(0xd800 + ((cp - 0x10000) >> 10));
      this.push(0xdc00 + ((cp - 0x10000) & 0x3ff));
    }
  }
  flush() {
    if (this.chunk.length > 0) this.text += fromCharCode.apply(null, this.chunk);
    this.chunk = [];
  }
  done() {
    this.flush();
    return this.text;
  }
}

/** The UTF-8 decoder's state between the chunks of a stream. */
const freshUtf8 = () => ({ cp: 0, needed: 0, seen: 0, lower: 0x80, upper: 0xbf });
function resetUtf8(state) {
  state.cp = 0;
  state.needed = 0;
  state.seen = 0;
  state.lower = 0x80;
  state.upper = 0xbf;
}

/** WHATWG "UTF-8 decoder" over `bytes`; at the end of a non-streamed input an unfinished sequence is one error. */
function decodeUtf8(bytes, state, stream, fatal) {
  const out = new Units();
  const fail = () => {
    if (fatal) throw invalidEncodedData('utf-8');
    out.push(REPLACEMENT);
  };
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (state.needed === 0) {
      if (b <= 0x7f) out.push(b);
      else if (b >= 0xc2 && b <= 0xdf) {
        state.needed = 1;
        state.cp = b & 0x1f;
      } else if (b >= 0xe0 && b <= 0xef) {
        if (b === 0xe0) state.lower = 0xa0;
        if (b === 0xed) state.upper = 0x9f;
        state.needed = 2;
        state.cp = b & 0xf;
      } else if (b >= 0xf0 && b <= 0xf4) {
        if (b === 0xf0) state.lower = 0x90;
        if (b === 0xf4) state.upper = 0x8f;
        state.needed = 3;
        state.cp = b & 0x7;
      } else fail();
      continue;
    }
    if (b < state.lower || b > state.upper) {
      // The sequence ends before this byte, which starts afresh.
      resetUtf8(state);
      fail();
      i--;
      continue;
    }
    state.lower = 0x80;
    state.upper = 0xbf;
    state.cp = (state.cp << 6) | (b & 0x3f);
    if (++state.seen === state.needed) {
      out.pushCodePoint(state.cp);
      resetUtf8(state);
    }
  }
  if (!stream && state.needed !== 0) {
    resetUtf8(state);
    fail();
  }
  return out.done();
}

/** UTF-8 bytes to text, invalid sequences replaced (Buffer#toString, response bodies, form decoding). */
export const utf8Decode = (bytes) => decodeUtf8(bytes, freshUtf8(), false, false);

/** WHATWG "shared UTF-16 decoder"; the state keeps an odd byte and a lead surrogate between chunks. */
function decodeUtf16(bytes, state, stream, fatal, bigEndian) {
  const out = new Units();
  const fail = () => {
    if (fatal) throw invalidEncodedData(bigEndian ? 'utf-16be' : 'utf-16le');
    out.push(REPLACEMENT);
  };
  for (let i = 0; i < bytes.length; i++) {
    if (state.byte === null) {
      state.byte = bytes[i];
      continue;
    }
    const unit = bigEndian ? (state.byte << 8) | bytes[i] : (bytes[i] << 8) | state.byte;
    state.byte = null;
    if (state.lead !== null) {
      const lead = state.lead;
      state.lead = null;
      if (unit >= 0xdc00 && unit <= 0xdfff) {
        out.push(lead);
        out.push(unit);
        continue;
      }
      fail();
    }
    if (unit >= 0xd800 && unit <= 0xdbff) state.lead = unit;
    else if (unit >= 0xdc00 && unit <= 0xdfff) fail();
    else out.push(unit);
  }
  if (!stream && (state.byte !== null || state.lead !== null)) {
    state.byte = null;
    state.lead = null;
    fail();
  }
  return out.done();
}

/** Node 20 decodes the windows-1252 labels as ISO-8859-1 (0x80 is U+0080, not €): so do we. */
function decodeLatin1(bytes) {
  const out = new Units();
  for (let i = 0; i < bytes.length; i++) out.push(bytes[i]);
  return out.done();
}

const LABELS = {
  'utf-8': ['unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'utf-8', 'utf8', 'x-unicode20utf8'],
  'utf-16le': ['csunicode', 'iso-10646-ucs-2', 'ucs-2', 'unicode', 'unicodefeff', 'utf-16', 'utf-16le'],
  'utf-16be': ['unicodefffe', 'utf-16be'],
  'windows-1252': [
    'ansi_x3.4-1968',
    'ascii',
    'cp1252',
    'cp819',
    'csisolatin1',
    'ibm819',
    'iso-8859-1',
    'iso-ir-100',
    'iso8859-1',
    'iso88591',
    'iso_8859-1',
    'iso_8859-1:1987',
    'l1',
    'latin1',
    'us-ascii',
    'windows-1252',
    'x-cp1252',
  ],
};
const ENCODING_OF = new Map();
for (const encoding of Object.keys(LABELS))
  for (const label of LABELS[encoding]) ENCODING_OF.set(label, encoding);

const BOMS = { 'utf-8': [0xef, 0xbb, 0xbf], 'utf-16le': [0xff, 0xfe], 'utf-16be': [0xfe, 0xff] };

function viewOf(input) {
  if (
    input instanceof ArrayBuffer ||
    (typeof SharedArrayBuffer !== 'undefined' && input instanceof SharedArrayBuffer)
  )
    return new Uint8ArrayCtor(input);
  if (isView(input)) return new Uint8ArrayCtor(input.buffer, input.byteOffset, input.byteLength);
  // Node 20's own wording, argument name included.
  const err = new TypeError(
    'The "list" argument must be an instance of SharedArrayBuffer, ArrayBuffer or ArrayBufferView.',
  );
  err.code = 'ERR_INVALID_ARG_TYPE';
  throw err;
}

export class TextDecoder {
  #encoding;
  #fatal;
  #ignoreBOM;
  #state;
  /** Bytes of a possible BOM seen at the start of a stream, not yet decoded. */
  #head = null;
  #streamed = false;
  constructor(label = 'utf-8', options = {}) {
    const key = StringCtor(label)
      .replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, '')
      .toLowerCase();
    const encoding = ENCODING_OF.get(key);
    if (encoding === undefined) throw encodingNotSupported(label);
    if (options !== null && typeof options !== 'object' && typeof options !== 'function')
      throw invalidArgType('options', 'of type object', options);
    this.#encoding = encoding;
    this.#fatal = Boolean(options?.fatal);
    this.#ignoreBOM = Boolean(options?.ignoreBOM);
    this.#reset();
  }
  get encoding() {
    return this.#encoding;
  }
  get fatal() {
    return this.#fatal;
  }
  get ignoreBOM() {
    return this.#ignoreBOM;
  }
  #reset() {
    this.#state = this.#encoding === 'utf-8' ? freshUtf8() : { byte: null, lead: null };
    this.#head = this.#ignoreBOM || !BOMS[this.#encoding] ? null : [];
  }
  decode(input = new Uint8ArrayCtor(0), options = {}) {
    let bytes = viewOf(input);
    const stream = Boolean(options?.stream);
    if (this.#head !== null) {
      // Strip the BOM once per stream, even when it arrives split over chunks.
      const bom = BOMS[this.#encoding];
      const joined = new Uint8ArrayCtor(this.#head.length + bytes.length);
      joined.set(this.#head);
      joined.set(bytes, this.#head.length);
      let n = 0;
      while (n < bom.length && n < joined.length && joined[n] === bom[n]) n++;
      if (n < bom.length && n === joined.length && stream) {
        this.#head = Array.from(joined);
        return '';
      }
      bytes = n === bom.length ? joined.subarray(n) : joined;
      this.#head = null;
    }
    let text;
    try {
      if (this.#encoding === 'utf-8') text = decodeUtf8(bytes, this.#state, stream, this.#fatal);
      else if (this.#encoding === 'windows-1252') {
        // Node 20 drops a leading 0xFF when ignoreBOM is set, in calls outside a stream until the
        // decoder has streamed once (measured, test/sandbox/parity-text.test.ts); so does this.
        if (stream) this.#streamed = true;
        const dropped = this.#ignoreBOM && !stream && !this.#streamed && bytes[0] === 0xff;
        text = decodeLatin1(dropped ? bytes.subarray(1) : bytes);
      } else text = decodeUtf16(bytes, this.#state, stream, this.#fatal, this.#encoding === 'utf-16be');
    } catch (err) {
      this.#reset();
      throw err;
    }
    if (!stream) this.#reset();
    return text;
  }
}
Object.defineProperty(TextDecoder.prototype, Symbol.toStringTag, {
  value: 'TextDecoder',
  configurable: true,
});
