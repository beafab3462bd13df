// The sources the gateway knows, read from the Secret holding its write keys (the one the chart installs and
// the gateway mounts), parsed with the gateway's own parser. A broken update keeps the last good sources.

import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { parseWriteKeys } from '../api/write-keys.js';
import type { KnownSources } from './world.js';

export interface WriteKeysSecretRef {
  namespace: string;
  name: string;
  /** The Secret key holding the YAML file. */
  key: string;
}

export class GatewaySources {
  private last: ReadonlySet<string> | undefined;
  private problem = 'the Secret has not been read yet';

  constructor(
    private readonly ref: WriteKeysSecretRef | undefined,
    private readonly log: Logger,
  ) {}

  get from(): string {
    return this.ref ? `Secret ${this.ref.namespace}/${this.ref.name}, key ${this.ref.key}` : '';
  }

  /** The Secret changed (or went): re-read it. */
  update(secret: V1Secret | undefined): void {
    if (!this.ref) return;
    const raw = secret?.data?.[this.ref.key];
    if (!secret) this.problem = 'the Secret does not exist';
    else if (raw === undefined) this.problem = `the Secret has no key "${this.ref.key}"`;
    else {
      try {
        const keys = parseWriteKeys(Buffer.from(raw, 'base64').toString('utf8'), this.from);
        this.last = new Set(keys.values());
        this.problem = '';
      } catch (err) {
        this.problem = (err as Error).message;
      }
    }
    if (this.problem && this.last) {
      this.log.warn(
        { writeKeys: this.from, problem: this.problem },
        'write keys unreadable: keeping the sources read before',
      );
    }
  }

  known(): KnownSources {
    if (!this.ref) return { checked: false };
    if (this.last) return { checked: true, sources: this.last, from: this.from };
    return { checked: true, from: this.from, problem: this.problem };
  }
}
