// The `process` a bundled library may read (semver checks of process.version in jsonwebtoken, NODE_ENV):
// the Node version the sandbox's built-ins follow, no environment.
export const process = {
  env: { NODE_ENV: 'production' },
  version: __dfnModules.nodeVersion,
  versions: { node: __dfnModules.nodeVersion.slice(1) },
  browser: false,
  nextTick: (fn, ...args) => Promise.resolve().then(() => fn(...args)),
};
