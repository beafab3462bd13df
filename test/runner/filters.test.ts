// Destination filters, data control and the `integrations` object, as the function would see their effect.

import { describe, expect, it } from 'vitest';
import type { SegmentEvent } from '../../api/events.js';
import { parseRunnerConfig, type RunnerConfigInput } from '../../api/runner-config.js';
import { compileEventFilter, readPath, withoutPath } from '../../runner/filters.js';

function filterFor(overrides: Partial<RunnerConfigInput>) {
  const config = parseRunnerConfig({
    apiVersion: 'dfn.dev/v1alpha1',
    kind: 'RunnerConfig',
    instance: { namespace: 'default', name: 'crm', source: 'web' },
    function: { revision: '1' },
    ...overrides,
  });
  return compileEventFilter(config.filters, config.dataControl, config.instance.name);
}

const order: SegmentEvent = {
  type: 'track',
  event: 'Order Completed',
  userId: 'u1',
  properties: {
    total: 120,
    currency: 'EUR',
    email: 'a@b.c',
    address: { street: 'Main 1', city: 'Oslo' },
    tags: ['vip'],
  },
  context: {
    ip: '10.0.0.1',
    userAgent: 'curl',
    traits: { email: 'a@b.c', plan: 'pro' },
    library: { name: 'analytics-node' },
  },
};

describe('integrations object', () => {
  it('sends events without an integrations object', () => {
    expect(filterFor({})(order).pass).toBe(true);
  });

  it('skips the function when All is false and it is not named', () => {
    const verdict = filterFor({})({ ...order, integrations: { All: false, Mixpanel: true } });
    expect(verdict).toEqual({ pass: false, reason: 'integrations.All is false' });
  });

  it('sends when All is false but the instance is named true', () => {
    expect(filterFor({})({ ...order, integrations: { All: false, crm: true } }).pass).toBe(true);
  });

  it('sends when All is false but one of its integration names carries options', () => {
    const filter = filterFor({ filters: { integrationNames: ['CRM Function'] } });
    expect(filter({ ...order, integrations: { All: false, 'CRM Function': { region: 'eu' } } }).pass).toBe(
      true,
    );
  });

  it('skips the function when it is named false, even with All true', () => {
    const verdict = filterFor({})({ ...order, integrations: { All: true, crm: false } });
    expect(verdict.pass).toBe(false);
  });
});

describe('destination filters', () => {
  it('keeps only the listed event types', () => {
    const filter = filterFor({ filters: { eventTypes: ['identify'] } });
    expect(filter(order).pass).toBe(false);
    expect(filter({ type: 'identify', userId: 'u1' }).pass).toBe(true);
  });

  it('keeps only the listed track event names and lets other types through', () => {
    const filter = filterFor({ filters: { eventNames: ['Order Completed'] } });
    expect(filter(order).pass).toBe(true);
    expect(filter({ ...order, event: 'Product Viewed' }).pass).toBe(false);
    expect(filter({ type: 'page', name: 'Home' }).pass).toBe(true);
  });

  it('filters out a track event whose name is not a string, without throwing', () => {
    const filter = filterFor({ filters: { eventNames: ['Order Completed'] } });
    const odd = JSON.parse('{"type": "track", "event": {"toString": 0}}') as SegmentEvent;
    expect(filter(odd)).toEqual({
      pass: false,
      reason: 'event name {"toString":0} not in filters.eventNames',
    });
    expect(filter({ type: 'track' })).toEqual({
      pass: false,
      reason: 'event name (none) not in filters.eventNames',
    });
  });

  it('requires every condition of require', () => {
    const filter = filterFor({
      filters: {
        require: [
          { field: 'properties.total', op: 'gte', value: 100 },
          { field: 'properties.currency', op: 'in', value: ['EUR', 'USD'] },
        ],
      },
    });
    expect(filter(order).pass).toBe(true);
    expect(filter({ ...order, properties: { ...order.properties, total: 99 } }).pass).toBe(false);
    expect(filter({ ...order, properties: { ...order.properties, currency: 'NOK' } })).toEqual({
      pass: false,
      reason: 'requires properties.currency in ["EUR","USD"]',
    });
  });

  it('drops events matching any exclude condition', () => {
    const filter = filterFor({
      filters: {
        exclude: [
          { field: 'context.library.name', op: 'startsWith', value: 'analytics-' },
          { field: 'userId', op: 'notExists' },
        ],
      },
    });
    expect(filter(order).pass).toBe(false);
    expect(filter({ ...order, context: {} }).pass).toBe(true);
    expect(filter({ ...order, context: {}, userId: null }).pass).toBe(false);
  });

  it('evaluates each operator on the value at the path', () => {
    const cases: Array<[string, unknown, boolean]> = [
      ['equals', 'EUR', true],
      ['notEquals', 'EUR', false],
      ['notIn', ['USD'], true],
      ['contains', 'U', true],
      ['endsWith', 'UR', true],
      ['matches', '^E.R$', true],
      ['lt', 1, false],
    ];
    for (const [op, value, expected] of cases) {
      const field = op === 'lt' ? 'properties.total' : 'properties.currency';
      const filter = filterFor({ filters: { require: [{ field, op: op as never, value }] } });
      expect([op, filter(order).pass]).toEqual([op, expected]);
    }
    const tagFilter = filterFor({
      filters: { require: [{ field: 'properties.tags', op: 'contains', value: 'vip' }] },
    });
    expect(tagFilter(order).pass).toBe(true);
    const indexFilter = filterFor({
      filters: { require: [{ field: 'properties.tags.0', op: 'equals', value: 'vip' }] },
    });
    expect(indexFilter(order).pass).toBe(true);
  });

  it('treats a string that looks like a number as not a number', () => {
    const filter = filterFor({ filters: { require: [{ field: 'properties.total', op: 'gt', value: 1 }] } });
    expect(filter({ ...order, properties: { total: '120' } }).pass).toBe(false);
  });
});

describe('data control', () => {
  it('removes listed properties, traits and context fields before the function sees the event', () => {
    const filter = filterFor({
      dataControl: {
        dropProperties: ['email', 'address.street'],
        dropTraits: ['email'],
        dropContext: ['ip'],
      },
    });
    const verdict = filter({ ...order, traits: { email: 'a@b.c', name: 'Ann' } });
    expect(verdict.pass).toBe(true);
    const seen = (verdict as { event: SegmentEvent }).event;
    expect(seen.properties).toEqual({
      total: 120,
      currency: 'EUR',
      address: { city: 'Oslo' },
      tags: ['vip'],
    });
    expect(seen.traits).toEqual({ name: 'Ann' });
    expect(seen.context).toEqual({
      userAgent: 'curl',
      traits: { plan: 'pro' },
      library: { name: 'analytics-node' },
    });
  });

  it('leaves the published event untouched (dead letters keep the original)', () => {
    const original = structuredClone(order);
    filterFor({ dataControl: { dropProperties: ['address.street'] } })(order);
    expect(order).toEqual(original);
  });

  it('filters see fields that data control removes', () => {
    const filter = filterFor({
      filters: { require: [{ field: 'properties.email', op: 'exists' }] },
      dataControl: { dropProperties: ['email'] },
    });
    const verdict = filter(order);
    expect(verdict.pass).toBe(true);
    expect(readPath((verdict as { event: SegmentEvent }).event, ['properties', 'email'])).toBeUndefined();
  });

  it('returns the same object when a path is absent', () => {
    expect(withoutPath(order, ['properties', 'nope', 'deeper'])).toBe(order);
  });
});
