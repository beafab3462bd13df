// Whether a function's code loads, and which handlers it defines: loaded through the sandbox's public
// entry only, in a sandbox process (the operator holds cluster credentials; user code runs nowhere but in
// the sandbox), once per distinct code, the verdict remembered.

import { DestinationFunctionReasons as R } from '../../api/destination-function.js';
import { HANDLER_NAMES, type HandlerName } from '../../api/events.js';
import { FunctionLoadError, type FunctionSandbox, loadSupervisedFunction } from '../../sandbox/index.js';
import { sha256 } from '../hashing.js';

export type CodeVerdict =
  | { valid: true; handlers: HandlerName[] }
  | { valid: false; reason: string; message: string };

export interface CodeLimits {
  timeoutMs?: number;
  memoryMb?: number;
}

/** Verdicts kept: a few hundred distinct codes is far more than any cluster's functions. */
const MAX_VERDICTS = 512;

export class CodeChecker {
  private readonly verdicts = new Map<string, Promise<CodeVerdict>>();

  check(code: string, limits: CodeLimits = {}): Promise<CodeVerdict> {
    const key = sha256(`${limits.timeoutMs ?? ''}/${limits.memoryMb ?? ''}\n${code}`);
    let verdict = this.verdicts.get(key);
    if (!verdict) {
      verdict = load(code, limits);
      this.verdicts.set(key, verdict);
      // A failure to run the check at all is not a verdict: the next reconcile tries again.
      verdict.catch(() => this.verdicts.delete(key));
      if (this.verdicts.size > MAX_VERDICTS) this.verdicts.delete(this.verdicts.keys().next().value!);
    }
    return verdict;
  }
}

async function load(code: string, limits: CodeLimits): Promise<CodeVerdict> {
  let sandbox: FunctionSandbox;
  try {
    // In a sandbox process: code that aborts or wedges isolated-vm while loading ends that process only.
    sandbox = await loadSupervisedFunction(code, {
      filename: 'function.js',
      limits: {
        ...(limits.timeoutMs ? { timeoutMs: limits.timeoutMs } : {}),
        ...(limits.memoryMb ? { memoryMb: limits.memoryMb } : {}),
      },
    });
  } catch (err) {
    if (!(err instanceof FunctionLoadError)) throw err;
    const where = err.line !== undefined ? `${err.line}:${err.column ?? 0}: ` : '';
    return {
      valid: false,
      reason: err.reason.startsWith('SyntaxError') ? R.SyntaxError : R.LoadFailed,
      message: `${where}${err.reason}`,
    };
  }
  try {
    const handlers = HANDLER_NAMES.filter((h) => sandbox.handlers.has(h));
    if (handlers.length === 0) {
      return {
        valid: false,
        reason: R.NoHandlers,
        message: `the code defines no handler: define at least one of ${HANDLER_NAMES.join(', ')}`,
      };
    }
    return { valid: true, handlers };
  } finally {
    sandbox.dispose();
  }
}
