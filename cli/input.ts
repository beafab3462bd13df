// Reading the files and JSON a command is given, with errors that name the file and the problem.

import { readFile } from 'node:fs/promises';

/** A mistake in how a command was called: reported on stderr, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Reads a file, or stdin for "-". */
export async function readInput(path: string, what: string): Promise<string> {
  if (path === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : String((err as Error).message);
    throw new UsageError(`cannot read ${what} file ${path}: ${why}`);
  }
}

export function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${name} is not valid JSON: ${(err as Error).message}`);
  }
}
