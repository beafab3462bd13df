// The files through which the global set-up (test/setup/control-plane.ts) tells test workers how the
// shared control plane's start went; a module of its own, so the set-up need not import vitest's test API.

export const READY_FILE = 'ready.json';
export const FAILED_FILE = 'failed.txt';

export interface ReadyInfo {
  kubeconfigPath: string;
  server: string;
  /** For a local kubelet's logs server: its serving certificate, and the CA its callers' certs chain to. */
  kubeletCert: string;
  kubeletKey: string;
  caCert: string;
}
