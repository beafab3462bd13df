// Locates the test binaries that scripts/setup.sh builds, from the versions in scripts/tools.env.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const repoRoot = new URL('../..', import.meta.url).pathname;

function toolsEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(repoRoot, 'scripts/tools.env'), 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!.replace(/^"|"$/g, '').replace('$HOME', homedir());
  }
  return env;
}

export function toolPath(name: string, versionKey: string): string {
  const env = toolsEnv();
  const dir = process.env.DFN_TOOLS_DIR ?? env.DFN_TOOLS_DIR_DEFAULT!;
  const path = join(dir, `${name}-${env[versionKey]}`, name);
  if (!existsSync(path)) throw new Error(`${name} not found at ${path}: run \`npm run setup\` first`);
  return path;
}

export const natsServerPath = () => toolPath('nats-server', 'NATS_SERVER_VERSION');
