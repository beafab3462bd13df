// Node's `buffer` for a bundled library: the sandbox's Buffer.
module.exports = { Buffer: __dfnModules.Buffer };
