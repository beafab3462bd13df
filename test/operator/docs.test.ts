// docs/operator.md stays true: its RBAC table is the one operator/rbac.ts defines, and it names every
// reason the operator can set.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DestinationFunctionReasons } from '../../api/destination-function.js';
import { FunctionInstanceReasons } from '../../api/function-instance.js';
import { rbacTable } from '../../operator/index.js';
import { repoRoot } from '../helpers/dfn.js';

const doc = readFileSync(`${repoRoot}docs/operator.md`, 'utf8');

describe('docs/operator.md', () => {
  it('lists the RBAC of operator/rbac.ts', () => {
    // Compared cell by cell: the formatter pads Markdown tables.
    const cells = (line: string) => line.split('|').map((c) => c.trim().replace(/^-+$/, '-'));
    const docRows = doc.split('\n').map((l) => cells(l).join('|'));
    for (const row of rbacTable().split('\n')) expect(docRows).toContain(cells(row).join('|'));
  });

  it('names every reason of both kinds', () => {
    for (const reason of [
      ...Object.values(DestinationFunctionReasons),
      ...Object.values(FunctionInstanceReasons),
    ]) {
      expect(doc, reason).toContain(`\`${reason}\``);
    }
  });
});
