// What reaches the function: the event's own `integrations`, destination filters, then data control.
// Pure functions of the event and the instance's config, so they are compiled once and cheap per event.

import { isDeepStrictEqual } from 'node:util';
import type { SegmentEvent } from '../api/events.js';
import type { Condition, DataControlConfig, FiltersConfig } from '../api/runner-config.js';

export type FilterVerdict = { pass: true; event: SegmentEvent } | { pass: false; reason: string };

export type EventFilter = (event: SegmentEvent) => FilterVerdict;

/** Reads a dotted path (`properties.items.0.sku`) from an event; undefined when any step is missing. */
export function readPath(value: unknown, path: readonly string[]): unknown {
  let node = value;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = Object.hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined;
  }
  return node;
}

function compileCondition(condition: Condition): (event: SegmentEvent) => boolean {
  const path = condition.field.split('.');
  const expected = condition.value;
  switch (condition.op) {
    case 'equals':
      return (e) => isDeepStrictEqual(readPath(e, path), expected);
    case 'notEquals':
      return (e) => !isDeepStrictEqual(readPath(e, path), expected);
    case 'in': {
      const list = expected as unknown[];
      return (e) => {
        const v = readPath(e, path);
        return list.some((x) => isDeepStrictEqual(v, x));
      };
    }
    case 'notIn': {
      const list = expected as unknown[];
      return (e) => {
        const v = readPath(e, path);
        return !list.some((x) => isDeepStrictEqual(v, x));
      };
    }
    case 'contains':
      return (e) => {
        const v = readPath(e, path);
        if (typeof v === 'string') return typeof expected === 'string' && v.includes(expected);
        return Array.isArray(v) && v.some((x) => isDeepStrictEqual(x, expected));
      };
    case 'startsWith':
      return (e) => {
        const v = readPath(e, path);
        return typeof v === 'string' && v.startsWith(expected as string);
      };
    case 'endsWith':
      return (e) => {
        const v = readPath(e, path);
        return typeof v === 'string' && v.endsWith(expected as string);
      };
    case 'matches': {
      const re = new RegExp(expected as string);
      return (e) => {
        const v = readPath(e, path);
        return typeof v === 'string' && re.test(v);
      };
    }
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const bound = expected as number;
      const cmp = {
        gt: (v: number) => v > bound,
        gte: (v: number) => v >= bound,
        lt: (v: number) => v < bound,
        lte: (v: number) => v <= bound,
      }[condition.op];
      return (e) => {
        const v = readPath(e, path);
        return typeof v === 'number' && cmp(v);
      };
    }
    case 'exists':
      return (e) => readPath(e, path) != null;
    case 'notExists':
      return (e) => readPath(e, path) == null;
  }
}

function describe(condition: Condition): string {
  return condition.value === undefined
    ? `${condition.field} ${condition.op}`
    : `${condition.field} ${condition.op} ${JSON.stringify(condition.value)}`;
}

/**
 * Segment's rule for an event's `integrations` object: a destination named `false` is skipped; named `true`
 * (or with an options object) it is sent even when `All` is false; otherwise `All: false` skips it.
 */
export function integrationsVerdict(event: SegmentEvent, names: readonly string[]): string | undefined {
  const integrations = event.integrations;
  if (integrations === null || typeof integrations !== 'object') return undefined;
  let named = false;
  for (const name of names) {
    if (!Object.hasOwn(integrations, name)) continue;
    const value = integrations[name];
    if (value === false) return `integrations["${name}"] is false`;
    if (value === true || (value !== null && typeof value === 'object')) named = true;
  }
  if (!named && integrations.All === false) return 'integrations.All is false';
  return undefined;
}

/** A copy of `obj` without the value at `path`, sharing everything not on the path; `obj` itself if absent. */
export function withoutPath<T>(obj: T, path: readonly string[]): T {
  if (path.length === 0 || obj === null || typeof obj !== 'object') return obj;
  const [head, ...rest] = path as [string, ...string[]];
  if (!Object.hasOwn(obj, head)) return obj;
  const record = obj as Record<string, unknown>;
  if (rest.length === 0) {
    if (Array.isArray(obj)) return obj;
    const { [head]: _dropped, ...remaining } = record;
    return remaining as T;
  }
  const child = withoutPath(record[head], rest);
  if (child === record[head]) return obj;
  if (Array.isArray(obj)) {
    const copy = obj.slice();
    copy[Number(head)] = child;
    return copy as T;
  }
  return { ...record, [head]: child } as T;
}

/** Data control as one function; the identity when nothing is configured, so the common case copies nothing. */
export function compileDataControl(config: DataControlConfig): (event: SegmentEvent) => SegmentEvent {
  const paths = [
    ...config.dropProperties.map((p) => ['properties', ...p.split('.')]),
    ...config.dropTraits.flatMap((p) => [
      ['traits', ...p.split('.')],
      ['context', 'traits', ...p.split('.')],
    ]),
    ...config.dropContext.map((p) => ['context', ...p.split('.')]),
  ];
  if (paths.length === 0) return (event) => event;
  return (event) => paths.reduce((e, path) => withoutPath(e, path), event);
}

/**
 * The whole pipeline for one instance. Filters see the event as published; the function sees it after
 * data control.
 */
export function compileEventFilter(
  filters: FiltersConfig,
  dataControl: DataControlConfig,
  instanceName: string,
): EventFilter {
  const names = [instanceName, ...filters.integrationNames];
  const types = filters.eventTypes.length ? new Set<string>(filters.eventTypes) : undefined;
  const eventNames = filters.eventNames.length ? new Set(filters.eventNames) : undefined;
  const exclude = filters.exclude.map((c) => ({ test: compileCondition(c), text: describe(c) }));
  const require = filters.require.map((c) => ({ test: compileCondition(c), text: describe(c) }));
  const control = compileDataControl(dataControl);

  return (event) => {
    const skipped = integrationsVerdict(event, names);
    if (skipped) return { pass: false, reason: skipped };
    if (types && !types.has(event.type))
      return { pass: false, reason: `event type ${event.type} not in filters.eventTypes` };
    // Not String(event.event): a payload's `{"toString": 0}` would throw, and a throw here derails the pull.
    if (
      eventNames &&
      event.type === 'track' &&
      !(typeof event.event === 'string' && eventNames.has(event.event))
    ) {
      return {
        pass: false,
        reason: `event name ${JSON.stringify(event.event) ?? '(none)'} not in filters.eventNames`,
      };
    }
    for (const c of exclude) if (c.test(event)) return { pass: false, reason: `excluded by ${c.text}` };
    for (const c of require) if (!c.test(event)) return { pass: false, reason: `requires ${c.text}` };
    return { pass: true, event: control(event) };
  };
}
