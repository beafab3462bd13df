// The files through which the global set-up (test/setup/control-plane.ts) tells test workers how the
// shared control plane's start went; a module of its own, so the set-up need not import vitest's test API.

export const READY_FILE = 'ready.json';
export const FAILED_FILE = 'failed.txt';

export interface ReadyInfo {
  kubeconfigPath: string;
  server: string;
}
