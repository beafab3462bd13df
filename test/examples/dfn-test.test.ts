// Each example passes `dfn test` (the CLI process, the runners' sandbox) with its sample event and settings,
// against a destination on 127.0.0.1 — and does what its folder says: signatures, per-event batch statuses,
// settings shaping the request with the Secret's value redacted, filters and data control.

import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SegmentEvent } from '../../api/events.js';
import { DataControlSchema, FiltersSchema } from '../../api/runner-config.js';
import { compileEventFilter } from '../../runner/filters.js';
import { Destination } from '../helpers/destination.js';
import { runDfn } from '../helpers/dfn.js';
import { type Example, examples, loadExample, sensitiveSettings } from './examples.js';

let dest: Destination;
let dir: string;
beforeAll(async () => {
  dest = await Destination.start();
  dir = mkdtempSync(join(tmpdir(), 'dfn-examples-'));
});
afterAll(async () => {
  await dest.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  dest.requests.length = 0;
  dest.respond = () => undefined;
});

/** The sample settings with every URL pointed at the test's destination (the samples name 127.0.0.1:8787). */
function localSettings(ex: Example): string {
  const settings = Object.fromEntries(
    Object.entries(ex.settings).map(([k, v]) => [
      k,
      typeof v === 'string' ? v.replace('http://127.0.0.1:8787', dest.url) : v,
    ]),
  );
  const file = join(dir, `${ex.name}-settings.json`);
  writeFileSync(file, JSON.stringify(settings));
  return file;
}

function writeEvent(name: string, event: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(event));
  return file;
}

async function dfnTest(ex: Example, eventFile = ex.eventFile) {
  const sensitive = sensitiveSettings(ex);
  const run = await runDfn([
    'test',
    ex.functionFile,
    '--event',
    eventFile,
    '--settings',
    localSettings(ex),
    '--allow-private-network',
    ...(sensitive.length ? ['--sensitive', sensitive.join(',')] : []),
    '--json',
  ]);
  return { ...run, report: run.stdout ? JSON.parse(run.stdout) : undefined };
}

describe.each(examples().map((e) => [e.name, e] as const))('dfn test examples/%s', (_name, ex) => {
  it('succeeds with the sample event and settings, reaching the destination', async () => {
    if (ex.name === 'bulk-orders') {
      dest.respond = (req) => ({
        status: 200,
        body: { results: req.json().items.map(() => ({ status: 201 })) },
      });
    }
    const run = await dfnTest(ex);
    expect(run.stderr).toBe('');
    expect(run.report.outcome).toBe('success');
    expect(run.code).toBe(0);
    expect(dest.requests.length).toBeGreaterThanOrEqual(1);
    // Sensitive settings reach the destination but never the report.
    for (const name of sensitiveSettings(ex)) expect(run.stdout).not.toContain(String(ex.settings[name]));
  });
});

describe('what each example does', () => {
  it('webhook: signs the body with HMAC of the API key and authenticates with it', async () => {
    const ex = loadExample('webhook');
    expect((await dfnTest(ex)).code).toBe(0);
    const [req] = dest.requests;
    const apiKey = String(ex.settings.apiKey);
    expect(req!.url).toBe('/events?type=track');
    expect(req!.headers['x-signature']).toBe(createHmac('sha256', apiKey).update(req!.body).digest('hex'));
    expect(req!.headers.authorization).toBe(`Basic ${Buffer.from(`${apiKey}:`).toString('base64')}`);
  });

  it('bulk-orders: one request for the batch, and one status per event — only refused events fail', async () => {
    const ex = loadExample('bulk-orders');
    const batch = [...(ex.event as SegmentEvent[])];
    // An event without an order id is discarded on its own, without being sent.
    batch.push({ ...batch[0]!, messageId: 'msg-no-order', properties: { total: 1 } } as SegmentEvent);
    dest.respond = () => ({
      status: 200,
      body: {
        results: [
          { status: 201 },
          { status: 503, error: 'shard busy' },
          { status: 422, error: 'unknown sku' },
        ],
      },
    });
    const run = await dfnTest(ex, writeEvent('batch.json', batch));
    expect(dest.requests).toHaveLength(1);
    expect(dest.requests[0]!.url).toBe('/v1/bulk');
    expect(dest.requests[0]!.json().items.map((i: { id: string }) => i.id)).toEqual([
      'msg-0101',
      'msg-0102',
      'msg-0103',
    ]);
    expect(run.report.results).toEqual([
      { outcome: 'success' },
      expect.objectContaining({ outcome: 'retry', message: 'shard busy' }),
      expect.objectContaining({ outcome: 'discard', message: 'unknown sku' }),
      expect.objectContaining({ outcome: 'discard', message: 'order events need properties.orderId' }),
    ]);
    expect(run.code).toBe(1);
  });

  it('bulk-orders: a bulk API that fails as a whole retries the whole batch', async () => {
    const ex = loadExample('bulk-orders');
    dest.respond = () => ({ status: 503 });
    const run = await dfnTest(ex);
    expect(run.report.outcome).toBe('retry');
    expect(run.report.results.every((r: { outcome: string }) => r.outcome === 'retry')).toBe(true);
  });

  it('crm-contacts: settings shape the request; the API key from the Secret authenticates and is redacted', async () => {
    const ex = loadExample('crm-contacts');
    const run = await dfnTest(ex);
    expect(run.code).toBe(0);
    const [req] = dest.requests;
    const id = createHash('md5').update('ada@example.com').digest('hex');
    expect(req!.method).toBe('PUT');
    expect(req!.url).toBe(`/3.0/lists/newsletter/members/${id}`);
    expect(req!.json()).toEqual({
      email_address: 'Ada@Example.com',
      status_if_new: 'pending', // doubleOptIn: true
      merge_fields: { FNAME: 'Ada', LNAME: 'Lovelace', PLAN: 'pro' }, // fieldMapping
      tags: ['signup', 'web'],
    });
    expect(req!.headers.authorization).toBe(
      `Basic ${Buffer.from(`dfn:${ex.settings.apiKey}`).toString('base64')}`,
    );
    expect(JSON.stringify(run.report.requests)).not.toContain(String(ex.settings.apiKey));
  });

  it('crm-contacts: an identify without an email is rejected, other track events are not supported', async () => {
    const ex = loadExample('crm-contacts');
    const noEmail = await dfnTest(
      ex,
      writeEvent('no-email.json', { type: 'identify', userId: 'u1', traits: {} }),
    );
    expect(noEmail.report).toMatchObject({ outcome: 'discard', errorType: 'MessageRejected' });
    const other = await dfnTest(
      ex,
      writeEvent('other.json', { type: 'track', userId: 'u1', event: 'Signed Up' }),
    );
    expect(other.report).toMatchObject({ outcome: 'discard', errorType: 'UnsupportedEventType' });
    expect(dest.requests).toHaveLength(0);
  });

  describe('product-analytics: the instance’s filters and data control', () => {
    const ex = loadExample('product-analytics');
    const [instance] = ex.instances;
    const filter = compileEventFilter(
      FiltersSchema.parse(instance!.spec.filters),
      DataControlSchema.parse(instance!.spec.dataControl),
      instance!.metadata.name,
    );
    const sample = ex.event as SegmentEvent;

    it('pass the sample event with the personal fields removed, and the function forwards what is left', async () => {
      const verdict = filter(sample);
      expect(verdict.pass).toBe(true);
      const controlled = (verdict as { event: SegmentEvent }).event;
      const run = await dfnTest(ex, writeEvent('controlled.json', controlled));
      expect(run.code).toBe(0);
      const body = dest.requests[0]!.json();
      expect(dest.requests[0]!.url).toBe('/collect/event');
      expect(body.properties).toEqual({ sku: 'sku-9', price: 19.9, address: { city: 'London' } });
      expect(body.context).toEqual({ traits: { plan: 'pro' } });
      expect(dest.requests[0]!.body).not.toMatch(/ada@example\.com|1 Main St|203\.0\.113\.7|Mozilla|\+44/);
    });

    it.each([
      ['an identify', { ...sample, type: 'identify' }],
      ['a track outside the funnel', { ...sample, event: 'Signed Up' }],
      ['a free product', { ...sample, properties: { ...sample.properties, price: 0 } }],
      ['the QA team’s traffic', { ...sample, context: { traits: { team: 'qa' } } }],
      [
        'an event that turns this destination off',
        { ...sample, integrations: { 'Product Analytics': false } },
      ],
      ['an event that turns all destinations off', { ...sample, integrations: { All: false } }],
    ])('keep out %s', (_what, event) => {
      expect(filter(event as SegmentEvent).pass).toBe(false);
    });

    it('let pages through', () => {
      expect(
        filter({ ...sample, type: 'page', name: 'Pricing', event: undefined } as SegmentEvent).pass,
      ).toBe(true);
    });
  });
});
