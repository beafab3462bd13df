// Locates the test binaries that scripts/setup.sh builds (the lookup itself is local/tools.ts, which the
// product shares), from the versions in scripts/tools.env.

import { cachedTool, helmBinary, kubeBinary } from '../../local/tools.js';

export const natsServerPath = () => cachedTool('nats-server', 'NATS_SERVER_VERSION');
export const kubectlPath = () => kubeBinary('kubectl');
export const helmPath = () => helmBinary();
