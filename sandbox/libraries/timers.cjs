// Node's `timers` for a bundled library: the sandbox's timers (bounded and charged to the invocation).
// setImmediate is a zero-delay timer, which is what it means to a library that only wants a later turn.
const { setTimeout, clearTimeout } = __dfnModules;
module.exports = {
  setTimeout,
  clearTimeout,
  setImmediate: (fn, ...args) => setTimeout(fn, 0, ...args),
  clearImmediate: clearTimeout,
};
