// The chart values `dfn up` installs with: the dfn image the local kubelet maps to this dfn, the stack's
// nats-server on loopback (Services do not route here), one write key, private networks allowed everywhere
// (destinations on the laptop are the point), one gateway replica (a laptop's CPUs), and the Pods' servers
// on loopback (each Pod process shares the machine's network here). Nothing else differs from the defaults.

import { stringify } from 'yaml';

/** The image the chart's Pods and the operator's runners name; the local kubelet runs this dfn for it. */
export const LOCAL_IMAGE_REPOSITORY = 'ghcr.io/dfn-dev/dfn';

export interface LocalChartValues {
  imageTag: string;
  natsUrl: string;
  writeKey: string;
  source: string;
}

export function chartValues(v: LocalChartValues): Record<string, unknown> {
  return {
    image: { repository: LOCAL_IMAGE_REPOSITORY, tag: v.imageTag },
    nats: { url: v.natsUrl },
    streams: { replicas: 1, storage: 'file' },
    writeKeys: { keys: { [v.writeKey]: v.source } },
    // A later flag wins over the chart's own --host=0.0.0.0 / the default --http-host.
    operator: { allowPrivateNetwork: ['*'], extraArgs: ['--http-host=127.0.0.1'] },
    gateway: { replicas: 1, extraArgs: ['--host=127.0.0.1'] },
  };
}

export const chartValuesYaml = (v: LocalChartValues) => stringify(chartValues(v));
