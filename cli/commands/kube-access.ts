// `dfn kube-access` (hidden, diagnostic): one API call with the Pod's own in-cluster credentials, to show
// what its service account may do. Prints one JSON line; exit 0 allowed, 1 refused, 2 no credentials.

import type { KubeConfig } from '@kubernetes/client-node';
import type { Command } from 'commander';

export function registerKubeAccessCommand(program: Command): void {
  const access = program
    .command('kube-access', { hidden: true })
    .description(
      "Diagnostic: make one Kubernetes API call with this Pod's service-account credentials " +
        '(in-cluster config, as the operator uses) and print the outcome as JSON.',
    );
  access
    .command('list <apiVersion> <kind>')
    .description("list objects of a kind, e.g. `list v1 ConfigMap`, in the Pod's namespace by default")
    .option('-n, --namespace <namespace>', "namespace to list in (default: the Pod's own)")
    .action(async (apiVersion: string, kind: string, flags: { namespace?: string }, cmd: Command) => {
      // Loaded here: the Kubernetes client is heavy, and no other dfn command needs it at start.
      const { ApiException, KubernetesObjectApi } = await import('@kubernetes/client-node');
      const { inClusterKubeConfig, NotInClusterError } = await import('../../lib/in-cluster.js');
      let kc: KubeConfig;
      try {
        kc = inClusterKubeConfig();
      } catch (err) {
        if (err instanceof NotInClusterError)
          return cmd.error(`dfn kube-access: ${err.message}`, { exitCode: 2 });
        throw err;
      }
      const namespace = flags.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace;
      const call = { apiVersion, kind, namespace };
      try {
        const list = await KubernetesObjectApi.makeApiClient(kc).list(apiVersion, kind, namespace);
        const names = list.items.map((o) => o.metadata?.name);
        process.stdout.write(`${JSON.stringify({ ...call, allowed: true, names })}\n`);
      } catch (err) {
        if (!(err instanceof ApiException)) throw err;
        const status = safeJson(err.body);
        process.stdout.write(
          `${JSON.stringify({ ...call, allowed: false, code: err.code, reason: status?.reason, message: status?.message })}\n`,
        );
        process.exitCode = 1;
      }
    });
}

function safeJson(text: unknown): { reason?: string; message?: string } | undefined {
  try {
    return typeof text === 'string' ? JSON.parse(text) : (text as { reason?: string });
  } catch {
    return undefined;
  }
}
