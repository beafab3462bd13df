// The command the local kubelet runs for the dfn image: this very dfn (same node, same flags, same entry
// point), with every path absolute because each Pod's process runs in its own root directory.

import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const MODULE_FLAGS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);

function absoluteSpecifier(specifier: string, cwd: string): string {
  if (specifier.startsWith('file:') || specifier.startsWith('node:') || isAbsolute(specifier))
    return specifier;
  if (specifier.startsWith('.')) return pathToFileURL(resolve(cwd, specifier)).href;
  // A package (e.g. tsx when dfn runs from its sources), resolved from here: dfn's own node_modules.
  return import.meta.resolve(specifier);
}

export function dfnCommand(
  execPath = process.execPath,
  execArgv = process.execArgv,
  entry = process.argv[1]!,
  cwd = process.cwd(),
): string[] {
  const flags: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (MODULE_FLAGS.has(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : execArgv[++i];
      if (value !== undefined) flags.push(name, absoluteSpecifier(value, cwd));
    } else {
      flags.push(arg);
    }
  }
  // isolated-vm (the runner's sandbox) needs it on Node >= 20.
  if (!flags.includes('--no-node-snapshot')) flags.unshift('--no-node-snapshot');
  return [execPath, ...flags, resolve(cwd, entry)];
}
