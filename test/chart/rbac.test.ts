// The chart's RBAC: the operator's rules are exactly operator/rbac.ts's (the one definition), and the roles
// for people do what Segment's permissions do — proven with `kubectl auth can-i --as` on a real API server
// where the chart is installed, directly and through the built-in admin, edit and view roles.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTANCE_NAMESPACE_RULES, LEASE_RULES, policyRule, writeKeysRules } from '../../operator/rbac.js';
import { kubectl, sharedControlPlane, useNamespace } from '../helpers/kube.js';
import { waitFor } from '../helpers/wait.js';
import { CHART_DIR, find, helm, render, stderrOf } from './helm.js';

/** Rules compared as sets of single grants, so the order of verbs or rules does not matter. */
function grants(
  rules: { apiGroups?: string[]; resources?: string[]; resourceNames?: string[]; verbs: string[] }[],
) {
  return rules
    .flatMap((r) =>
      (r.apiGroups ?? []).flatMap((g) =>
        (r.resources ?? []).flatMap((res) =>
          r.verbs.map((v) => `${g}/${res}${r.resourceNames ? `[${[...r.resourceNames].sort()}]` : ''}:${v}`),
        ),
      ),
    )
    .sort();
}

const expected = {
  instances: grants(INSTANCE_NAMESPACE_RULES.map(policyRule)),
  lease: grants(LEASE_RULES.map(policyRule)),
  writeKeys: (secret: string) => grants(writeKeysRules(secret).map(policyRule)),
};

describe("the operator's RBAC in the chart", () => {
  it('is operator/rbac.ts: a ClusterRole for instances, a Role for its Lease and one for the write-keys Secret', async () => {
    const objects = await render();
    expect(grants(find(objects, 'ClusterRole', 'dfn-operator').rules)).toEqual(expected.instances);
    expect(grants(find(objects, 'Role', 'dfn-operator-lease').rules)).toEqual(expected.lease);
    const writeKeys = find(objects, 'Role', 'dfn-operator-write-keys');
    expect(writeKeys.metadata.namespace).toBe('dfn-system');
    expect(grants(writeKeys.rules)).toEqual(expected.writeKeys('dfn-write-keys'));
    const binding = find(objects, 'ClusterRoleBinding', 'dfn-operator');
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'dfn-operator', namespace: 'dfn-system' },
    ]);
  });

  it('with watched namespaces, is a Role in each of them and no ClusterRole', async () => {
    const objects = await render({
      'operator.watchNamespaces': ['team-a', 'team-b'],
      'writeKeys.existingSecret': 'keys',
    });
    const roles = objects.filter((o) => o.kind === 'Role' && o.metadata.name === 'dfn-operator');
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(['team-a', 'team-b']);
    for (const role of roles) expect(grants(role.rules)).toEqual(expected.instances);
    expect(objects.some((o) => o.kind === 'ClusterRole' && o.metadata.name === 'dfn-operator')).toBe(false);
    expect(grants(find(objects, 'Role', 'dfn-operator-write-keys').rules)).toEqual(
      expected.writeKeys('keys'),
    );
  });
});

describe('roles for people, installed', () => {
  const ns = useNamespace('chart-rbac');
  let release = '';

  /** `resource` may name an object (`secrets/NAME`); a subresource is `kind/sub` (`functioninstances.dfn.dev/scale`). */
  const canI = async (user: string, verb: string, resource: string, namespace = ns.name) => {
    const [kind, sub] = resource.includes('.dfn.dev/') ? resource.split('/') : [resource];
    const run = await kubectl([
      'auth',
      'can-i',
      verb,
      kind!,
      ...(sub ? [`--subresource=${sub}`] : []),
      '--as',
      user,
      '--namespace',
      namespace,
    ]);
    // 0 yes, 1 no; anything else is an error of the check itself.
    if (run.code > 1) throw new Error(`kubectl auth can-i failed: ${run.stderr}`);
    return run.code === 0;
  };
  const bind = async (user: string, clusterRole: string) => {
    const run = await kubectl(
      [
        'create',
        'rolebinding',
        `${user}-${clusterRole}`.slice(0, 63),
        `--clusterrole=${clusterRole}`,
        `--user=${user}`,
      ],
      { namespace: ns.name },
    );
    expect(run.stderr).toBe('');
  };

  beforeAll(async () => {
    const cp = await sharedControlPlane();
    release = ns.name;
    const run = await helm(
      [
        'install',
        release,
        CHART_DIR,
        '--namespace',
        ns.name,
        '--set',
        'operator.replicas=0',
        '--set',
        'gateway.replicas=0',
      ],
      {
        kubeconfig: cp.kubeconfigPath,
      },
    );
    expect(stderrOf(run)).toBe('');
    expect(run.code).toBe(0);
    const role = (suffix: string) => `${release}-dfn-${suffix}`;
    await bind('fiona', role('functions-admin'));
    await bind('rick', role('functions-viewer'));
    await bind('sam', role('source-admin'));
    await bind('ed', 'edit');
    await bind('vic', 'view');
    await bind('ada', 'admin');
  }, 240_000);

  afterAll(async () => {
    const cp = await sharedControlPlane();
    if (release)
      await helm(['uninstall', release, '--namespace', ns.name], { kubeconfig: cp.kubeconfigPath });
  }, 120_000);

  it('functions admin creates, edits and deletes functions, and only reads instances', async () => {
    for (const verb of ['create', 'update', 'patch', 'delete', 'get', 'list', 'watch']) {
      expect(await canI('fiona', verb, 'destinationfunctions.dfn.dev'), verb).toBe(true);
    }
    expect(await canI('fiona', 'list', 'functioninstances.dfn.dev')).toBe(true);
    for (const verb of ['create', 'update', 'delete']) {
      expect(await canI('fiona', verb, 'functioninstances.dfn.dev'), verb).toBe(false);
    }
    // The status belongs to the operator.
    expect(await canI('fiona', 'patch', 'destinationfunctions.dfn.dev/status')).toBe(false);
    expect(await canI('fiona', 'get', 'secrets')).toBe(false);
  });

  it('functions read-only reads functions and instances and changes nothing', async () => {
    for (const resource of ['destinationfunctions.dfn.dev', 'functioninstances.dfn.dev']) {
      for (const verb of ['get', 'list', 'watch'])
        expect(await canI('rick', verb, resource), `${verb} ${resource}`).toBe(true);
      for (const verb of ['create', 'update', 'patch', 'delete']) {
        expect(await canI('rick', verb, resource), `${verb} ${resource}`).toBe(false);
      }
    }
  });

  it('source admin connects functions to sources: instances in full, functions read-only', async () => {
    for (const verb of ['create', 'update', 'patch', 'delete', 'get', 'list']) {
      expect(await canI('sam', verb, 'functioninstances.dfn.dev'), verb).toBe(true);
    }
    expect(await canI('sam', 'update', 'functioninstances.dfn.dev/scale')).toBe(true);
    // Delivery status is the operator's to write.
    expect(await canI('sam', 'patch', 'functioninstances.dfn.dev/status')).toBe(false);
    expect(await canI('sam', 'get', 'destinationfunctions.dfn.dev')).toBe(true);
    for (const verb of ['create', 'update', 'delete']) {
      expect(await canI('sam', verb, 'destinationfunctions.dfn.dev'), verb).toBe(false);
    }
  });

  it('a RoleBinding grants nothing in another namespace', async () => {
    expect(await canI('fiona', 'create', 'destinationfunctions.dfn.dev', 'default')).toBe(false);
    expect(await canI('sam', 'get', 'functioninstances.dfn.dev', 'default')).toBe(false);
  });

  it('the built-in edit and admin roles include both admin roles, view the read-only one', async () => {
    // kube-controller-manager aggregates the labelled ClusterRoles into the built-in ones.
    await waitFor(
      'aggregation into edit',
      () => canI('ed', 'create', 'destinationfunctions.dfn.dev'),
      60_000,
      250,
    );
    for (const user of ['ed', 'ada']) {
      await waitFor(
        `aggregation for ${user}`,
        () => canI(user, 'create', 'functioninstances.dfn.dev'),
        60_000,
        250,
      );
      expect(await canI(user, 'delete', 'destinationfunctions.dfn.dev')).toBe(true);
    }
    await waitFor(
      'aggregation into view',
      () => canI('vic', 'list', 'destinationfunctions.dfn.dev'),
      60_000,
      250,
    );
    expect(await canI('vic', 'get', 'functioninstances.dfn.dev')).toBe(true);
    for (const verb of ['create', 'patch', 'delete']) {
      expect(await canI('vic', verb, 'destinationfunctions.dfn.dev'), verb).toBe(false);
      expect(await canI('vic', verb, 'functioninstances.dfn.dev'), verb).toBe(false);
    }
  });

  it("the operator's ServiceAccount may do what operator/rbac.ts lists and no more", async () => {
    const sa = `system:serviceaccount:${ns.name}:${release}-dfn-operator`;
    expect(await canI(sa, 'patch', 'functioninstances.dfn.dev/status', 'default')).toBe(true);
    expect(await canI(sa, 'update', 'functioninstances.dfn.dev/status', 'default')).toBe(false);
    expect(await canI(sa, 'update', 'functioninstances.dfn.dev/finalizers', 'default')).toBe(true);
    expect(await canI(sa, 'create', 'deployments.apps', 'default')).toBe(true);
    expect(await canI(sa, 'create', 'destinationfunctions.dfn.dev', 'default')).toBe(false);
    expect(await canI(sa, 'update', 'deployments.apps', 'default')).toBe(false);
    expect(await canI(sa, 'update', 'leases.coordination.k8s.io')).toBe(true);
    expect(await canI(sa, 'update', 'leases.coordination.k8s.io', 'default')).toBe(false);
    expect(await canI(sa, 'get', `secrets/${release}-dfn-write-keys`)).toBe(true);
    expect(await canI(sa, 'create', 'pods')).toBe(false);
  });
});
