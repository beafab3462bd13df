// The Secret holding the runners' NATS credentials, one per namespace that has instances: runner pods mount
// it (they have no other credentials), the operator keeps it equal to what it was configured with.

import type { V1Secret } from '@kubernetes/client-node';
import { LABELS, MANAGED_BY, RUNNER_NATS_SECRET } from '../names.js';
import { NATS_FILES, type RunnerNatsAuth } from './runner-config.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** The Secret for `auth` in `namespace`; undefined when runners need no credentials. */
export function runnerNatsSecret(namespace: string, auth: RunnerNatsAuth): V1Secret | undefined {
  if (auth.kind === 'none') return undefined;
  const data: Record<string, string> =
    auth.kind === 'token'
      ? { [NATS_FILES.token]: b64(auth.token) }
      : auth.kind === 'creds'
        ? { [NATS_FILES.creds]: b64(auth.creds) }
        : { [NATS_FILES.password]: b64(auth.password) };
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: RUNNER_NATS_SECRET,
      namespace,
      labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.component]: 'runner-nats-credentials' },
    },
    data,
  };
}
