// Loading functions for sandbox tests, disposed after each test.

import { afterEach } from 'vitest';
import { type FunctionSandbox, loadFunction, type SandboxOptions } from '../../sandbox/index.js';

export function sandboxes() {
  const loaded: FunctionSandbox[] = [];
  afterEach(() => {
    for (const sb of loaded.splice(0)) sb.dispose();
  });
  const load = async (source: string, options: SandboxOptions = {}) => {
    const sb = await loadFunction(source, { limits: { timeoutMs: 2000 }, ...options });
    loaded.push(sb);
    return sb;
  };
  /** Runs `body` as an onTrack handler and returns its console lines (failing loudly on a non-success). */
  const logsOf = async (body: string, options: SandboxOptions = {}) => {
    const sb = await load(`async function onTrack(event, settings) {\n${body}\n}`, options);
    const [report] = await sb.invoke([{ type: 'track', event: 'Test' }]);
    if (report!.outcome.outcome !== 'success')
      throw new Error(`handler failed: ${JSON.stringify(report!.outcome)}`);
    return report!.logs;
  };
  return { load, logsOf };
}
