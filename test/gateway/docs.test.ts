// docs/gateway.md stays true to the code: every error code of the catalogue and every metric the
// gateway exports is documented, and nothing documented has disappeared.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GATEWAY_ERRORS } from '../../gateway/errors.js';
import { gatewayMetrics } from '../../gateway/metrics.js';

const doc = readFileSync(new URL('../../docs/gateway.md', import.meta.url), 'utf8');

describe('docs/gateway.md', () => {
  it('documents every error code with its status', () => {
    for (const [code, spec] of Object.entries(GATEWAY_ERRORS)) {
      expect(doc, code).toMatch(new RegExp(`\\| \`${code}\` +\\| ${spec.status} `));
    }
  });

  it('documents no error code that does not exist', () => {
    const documented = new Set(doc.match(/GW_[A-Z0-9_]+/g));
    for (const code of documented) expect(Object.keys(GATEWAY_ERRORS), code).toContain(code);
  });

  it('documents every metric', () => {
    const text = gatewayMetrics().registry.render();
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(5);
    for (const name of names) expect(doc, name).toContain(`\`${name}\``);
  });
});
