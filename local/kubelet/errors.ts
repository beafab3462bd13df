// Why the local kubelet could not run something, with the reasons a real kubelet reports in Pod status
// (CreateContainerConfigError, StartError, …), so `kubectl describe` reads the same.

export type KubeletReason =
  /** A ConfigMap, Secret or key the Pod needs does not exist (yet): retried. */
  | 'CreateContainerConfigError'
  /** The command cannot run here (only the dfn image's `dfn` is known). */
  | 'StartError'
  /** The image is not the dfn image: nothing of the Pod runs. */
  | 'UnsupportedImage'
  /** A volume type this kubelet cannot materialise. */
  | 'UnsupportedVolume';

export class KubeletError extends Error {
  override readonly name = 'KubeletError';
  readonly code = 'DFN_KUBELET';
  constructor(
    readonly reason: KubeletReason,
    message: string,
  ) {
    super(message);
  }
}
