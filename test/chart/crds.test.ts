// The chart installs the same CRDs as crds/: both are written by `npm run gen:crds` from api/.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { crdFiles } from '../../api/crd/definitions.js';
import { CHART_DIR } from './helm.js';

describe("the chart's CRDs", () => {
  it('charts/dfn/crds/ holds exactly what `npm run gen:crds` writes', () => {
    const dir = join(CHART_DIR, 'crds');
    const expected = crdFiles();
    expect(readdirSync(dir).sort()).toEqual(expected.map((f) => f.name).sort());
    for (const file of expected) {
      expect(
        readFileSync(join(dir, file.name), 'utf8'),
        `charts/dfn/crds/${file.name} is stale: run npm run gen:crds`,
      ).toBe(file.content);
    }
  });
});
