import { defineConfig } from 'vitest/config';

// isolated-vm needs --no-node-snapshot on Node >= 20, so tests run in forked workers started with it.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One Kubernetes control plane per run, started in the background (test/helpers/kube.ts waits for it).
    globalSetup: ['test/setup/control-plane.ts'],
    pool: 'forks',
    execArgv: ['--no-node-snapshot'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    // CI also writes the results as JSON, so .ci/run can print a plain "N passed, N failed" line.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.tmp/vitest-results.json' },
  },
});
