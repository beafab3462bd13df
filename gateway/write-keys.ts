// The write keys the gateway accepts and the source each belongs to, read from a mounted file
// (a Kubernetes Secret in production) and re-read when it changes, so keys rotate without a restart.

import { EventEmitter } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { parseWriteKeys, WriteKeysFileError } from '../api/write-keys.js';

export { parseWriteKeys, WRITE_KEYS_FORMAT, WriteKeysFileError } from '../api/write-keys.js';

export interface WriteKeysOptions {
  /** How often the file is re-read even without a change notification (ms); Kubernetes swaps Secret
   * files through symlinks, which inotify-based watching can miss. */
  pollMs?: number;
}

export interface WriteKeysEvents {
  reload: [{ keys: number; sources: number }];
  reloadError: [WriteKeysFileError];
}

export class WriteKeys extends EventEmitter<WriteKeysEvents> {
  private keys: Map<string, string>;
  private text: string;
  /** Content that failed to parse, so a broken file is reported once, not on every poll. */
  private rejectedText: string | undefined;
  private lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private checking: Promise<void> | undefined;
  private recheck = false;

  private constructor(
    readonly path: string,
    text: string,
    keys: Map<string, string>,
  ) {
    super();
    this.text = text;
    this.keys = keys;
  }

  /** Reads and validates the file; throws WriteKeysFileError when it is missing or invalid. */
  static async load(path: string): Promise<WriteKeys> {
    const text = await WriteKeys.read(path);
    return new WriteKeys(path, text, parseWriteKeys(text, path));
  }

  private static async read(path: string): Promise<string> {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new WriteKeysFileError(path, code === 'ENOENT' ? 'no such file' : (err as Error).message);
    }
  }

  /** The source a write key belongs to, or undefined for an unknown key. */
  sourceOf(writeKey: string): string | undefined {
    return this.keys.get(writeKey);
  }

  get size(): number {
    return this.keys.size;
  }

  get sources(): number {
    return new Set(this.keys.values()).size;
  }

  /** Starts following the file: change notifications for promptness, polling as the safety net. */
  watch(options: WriteKeysOptions = {}): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), options.pollMs ?? 5000);
    this.timer.unref();
    try {
      // Watch the directory: Secret updates replace the file (via the ..data symlink), not edit it.
      const name = basename(this.path);
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (!file || file === name || file.startsWith('..')) void this.check();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // Polling alone still picks changes up.
    }
  }

  /** Re-reads the file now; resolves once the current content is in effect (or rejected). */
  check(): Promise<void> {
    if (this.checking) {
      this.recheck = true;
      return this.checking;
    }
    this.checking = (async () => {
      do {
        this.recheck = false;
        await this.checkOnce();
      } while (this.recheck);
    })().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async checkOnce(): Promise<void> {
    let text: string;
    let keys: Map<string, string>;
    try {
      text = await WriteKeys.read(this.path);
      if (text === this.rejectedText) return;
      if (text === this.text) {
        this.lastError = undefined;
        return;
      }
      try {
        keys = parseWriteKeys(text, this.path);
      } catch (err) {
        this.rejectedText = text;
        throw err;
      }
    } catch (err) {
      // Keep serving with the last good keys: a half-written or broken file must not lock every client out.
      const error = err instanceof WriteKeysFileError ? err : new WriteKeysFileError(this.path, String(err));
      if (error.message === this.lastError) return;
      this.lastError = error.message;
      if (this.listenerCount('reloadError') > 0) this.emit('reloadError', error);
      return;
    }
    this.text = text;
    this.rejectedText = undefined;
    this.lastError = undefined;
    this.keys = keys;
    this.emit('reload', { keys: keys.size, sources: this.sources });
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }
}
