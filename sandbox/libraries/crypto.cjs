// Node's `crypto` for a bundled library: the sandbox's own (sandbox/isolate/crypto.js), handed in when
// the library is evaluated, so a function that replaced globalThis.crypto breaks only its own code.
module.exports = __dfnModules.crypto;
