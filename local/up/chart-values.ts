// The chart values `dfn up` installs with: the dfn image the local kubelet maps to this dfn, the stack's
// nats-server on loopback (Services do not route here), one write key, and private networks allowed
// everywhere (destinations on the laptop are the point). Nothing else differs from the chart's defaults.

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
    image: { repository: LOCAL_IMAGE_REPOSITORY, tag: v.imageTag, pullPolicy: 'IfNotPresent' },
    nats: { url: v.natsUrl, streamReplicas: 1 },
    writeKeys: { [v.writeKey]: v.source },
    allowPrivateNetwork: ['*'],
  };
}

export const chartValuesYaml = (v: LocalChartValues) => stringify(chartValues(v));
