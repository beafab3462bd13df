// Each example folder as a user applies it: `kubectl apply -f examples/<name>/` succeeds on a real API server,
// and the operator's own checks pass — the code loads with the handlers it defines, the settings satisfy the
// schema with the Secret's values, the consumer exists. The folder and its sample inputs agree.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settingsProblems } from '../../api/settings.js';
import type { Operator } from '../../operator/index.js';
import { CODE_FILE, CODE_KEY, codeConfigMapFile, codeConfigMapName } from '../../scripts/example-code.js';
import { kubectl, useNamespace } from '../helpers/kube.js';
import { NatsServer } from '../helpers/nats-server.js';
import { testOperator, waitForCondition, waitForStatus } from '../helpers/operator.js';
import { definedHandlers, EXAMPLES_DIR, examples } from './examples.js';

const all = examples();

describe('the examples', () => {
  it('are at least the four the README lists, each with a line there', () => {
    expect(all.map((e) => e.name)).toEqual(
      expect.arrayContaining(['webhook', 'bulk-orders', 'crm-contacts', 'product-analytics']),
    );
    const readme = readFileSync(join(EXAMPLES_DIR, '..', 'README.md'), 'utf8');
    for (const ex of all) expect(readme, ex.name).toContain(`(examples/${ex.name}/)`);
  });

  describe.each(all.map((e) => [e.name, e] as const))('%s', (_name, ex) => {
    it('holds only manifests where kubectl apply -f reads files, and the sample inputs in sample/', () => {
      for (const { file, objects } of ex.manifests) {
        for (const o of objects) {
          expect(o.apiVersion, `${file}: apiVersion`).toBeTruthy();
          expect(o.kind, `${file}: kind`).toBeTruthy();
          expect(o.metadata?.name, `${file}: metadata.name`).toBeTruthy();
        }
      }
      expect(ex.instances.length).toBeGreaterThanOrEqual(1);
    });

    it(`${CODE_FILE} is function.js as its ConfigMap, current, and the function reads its code from it`, () => {
      expect(
        readFileSync(join(ex.dir, CODE_FILE), 'utf8'),
        `examples/${ex.name}/${CODE_FILE} is stale: run npm run gen:examples`,
      ).toBe(codeConfigMapFile(EXAMPLES_DIR, ex.name));
      expect(ex.fn.spec.codeFrom?.configMapKeyRef).toEqual({
        name: codeConfigMapName(ex.name),
        key: CODE_KEY,
      });
    });

    it("the sample settings are the instance's settings with its Secret's values, and satisfy the schema", () => {
      const [instance] = ex.instances;
      const fromSecrets = Object.fromEntries(
        Object.entries(instance!.spec.secretSettings ?? {}).map(([setting, { secretKeyRef }]) => {
          const secret = ex.secrets.find((s) => s.metadata.name === secretKeyRef.name);
          expect(secret, `Secret ${secretKeyRef.name}`).toBeDefined();
          return [setting, secret!.stringData[secretKeyRef.key]];
        }),
      );
      expect({ ...instance!.spec.settings, ...fromSecrets }).toEqual(ex.settings);
      expect(settingsProblems(ex.fn.spec.settings as never, ex.settings)).toEqual([]);
      // Sensitive values only ever come from a Secret.
      for (const s of ex.fn.spec.settings ?? []) {
        if (s.sensitive) expect(instance!.spec.settings ?? {}, s.name).not.toHaveProperty(s.name);
      }
    });
  });
});

describe('kubectl apply -f examples/<name>/, with the operator', () => {
  const ns = useNamespace('examples');
  let nats: NatsServer;
  let operator: Operator | undefined;

  beforeAll(async () => {
    nats = await NatsServer.start();
    // As `dfn up` runs it: instances of this namespace may reach private networks.
    operator = testOperator({
      kc: ns.kc,
      namespace: ns.name,
      natsUrl: nats.url,
      allowPrivateNetwork: [ns.name],
    });
  }, 120_000);

  afterAll(async () => {
    await operator?.stop();
    await nats?.dispose();
  }, 60_000);

  it.each(all.map((e) => [e.name, e] as const))(
    '%s applies cleanly; its code loads, its settings are valid, its consumer exists',
    async (_name, ex) => {
      const run = await kubectl(['apply', '-f', ex.dir], { namespace: ns.name });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      // Every object of the folder was created.
      const created = ex.manifests.flatMap((m) => m.objects).map((o) => `${o.kind}/${o.metadata!.name}`);
      expect(run.stdout.split('\n').filter(Boolean)).toHaveLength(created.length);

      const fnStatus = await waitForCondition(
        ns.kc,
        'DestinationFunction',
        ns.name,
        ex.fn.metadata.name,
        'CodeValid',
        'True',
      );
      expect([...(fnStatus.handlers ?? [])].sort()).toEqual(definedHandlers(ex.functionFile));
      await waitForCondition(ns.kc, 'DestinationFunction', ns.name, ex.fn.metadata.name, 'Ready', 'True');
      for (const instance of ex.instances) {
        await waitForCondition(
          ns.kc,
          'FunctionInstance',
          ns.name,
          instance.metadata.name,
          'SettingsValid',
          'True',
        );
        await waitForCondition(
          ns.kc,
          'FunctionInstance',
          ns.name,
          instance.metadata.name,
          'ConsumerReady',
          'True',
        );
        // Nothing but the runner itself stands between the instance and delivery (no kubelet runs here).
        const status = await waitForStatus(
          ns.kc,
          'FunctionInstance',
          ns.name,
          instance.metadata.name,
          'a revision',
          (s) => Boolean(s.revision),
        );
        expect(status.conditions?.find((c) => c.type === 'Ready')?.reason).not.toMatch(
          /InvalidSpec|FunctionNotFound|FunctionNotReady|PrivateNetworkNotAllowed|SourceUnknown/,
        );
      }
    },
    120_000,
  );
});
