// Kubernetes quantities as numbers (api/kube-types.ts): what the operator compares (--runner-resources) and
// the local kubelet divides (resourceFieldRef), read as Kubernetes reads them.

import { describe, expect, it } from 'vitest';
import { quantityValue } from '../../api/kube-types.js';
import { parseQuantity } from '../../local/kubelet/downward.js';

describe('quantityValue', () => {
  it.each([
    ['500m', 0.5],
    ['2', 2],
    [2, 2],
    ['128Mi', 128 * 2 ** 20],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['1k', 1000],
    ['1M', 1e6],
    ['1e3', 1000],
    ['2E', 2e18],
    ['100u', 1e-4],
  ])('reads %s as %d', (quantity, value) => {
    expect(quantityValue(quantity)).toBeCloseTo(value, 9);
  });

  it('knows no other suffix, and no words', () => {
    for (const bad of ['1mi', '1KB', 'lots', '', 'Mi', '1 Gi']) expect(quantityValue(bad)).toBeUndefined();
  });

  it('orders what the operator compares: a request above its limit is seen as such', () => {
    expect(quantityValue('1Gi')! > quantityValue('512Mi')!).toBe(true);
    expect(quantityValue('1000m')! > quantityValue('1')!).toBe(false);
  });

  it('is what the local kubelet divides by, and a non-quantity is a container config error there', () => {
    expect(parseQuantity('256Mi') / parseQuantity('1Mi')).toBe(256);
    expect(() => parseQuantity('lots')).toThrow(/"lots" is not a quantity/);
  });
});
