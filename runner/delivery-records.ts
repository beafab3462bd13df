// Failed delivery attempts, written to the instance's subject of the bounded deliveries stream and read back
// by `dfn deliveries`. Recording never holds up delivery: publishes are tracked, capped, and flushed at stop.

import type { JetStreamClient, JetStreamManager } from 'nats';
import type { SegmentEvent } from '../api/events.js';
import {
  type DeliveryRecord,
  deliveriesSubject,
  type InstanceRef,
  type RequestRecord,
  type Topology,
} from '../api/jetstream.js';
import type { Logger } from '../lib/telemetry.js';
import type { Redactor, RequestTrace } from '../sandbox/index.js';
import { readSubject } from './stream-reader.js';

/** Record publishes allowed in flight; past this a failure storm drops records rather than slow delivery. */
const MAX_PENDING_PUBLISHES = 512;

export interface RecordIdentity {
  instance: InstanceRef;
  replica: string;
  revision: string;
}

export type RecordInput = Omit<
  DeliveryRecord,
  'instance' | 'replica' | 'revision' | 'messageId' | 'eventType' | 'eventName' | 'requests' | 'at'
> & { event: SegmentEvent; requests: readonly RequestTrace[] };

export function eventName(event: SegmentEvent): string | undefined {
  if (event.type === 'track' && typeof event.event === 'string') return event.event;
  if ((event.type === 'page' || event.type === 'screen') && typeof event.name === 'string') return event.name;
  return undefined;
}

export class DeliveryRecorder {
  private readonly subject: string;
  private readonly pending = new Set<Promise<unknown>>();
  private droppedSinceWarning = 0;

  constructor(
    private readonly js: JetStreamClient,
    topology: Topology,
    private readonly identity: RecordIdentity,
    private readonly redact: Redactor,
    private readonly log: Logger,
  ) {
    this.subject = deliveriesSubject(topology, identity.instance);
  }

  /** The record as written: identity added, every free-text field redacted. */
  build(input: RecordInput): DeliveryRecord {
    const { event, requests, ...rest } = input;
    const r = (text: string) => this.redact.text(text);
    return {
      ...this.identity,
      messageId: typeof event.messageId === 'string' ? event.messageId : null,
      eventType: String(event.type),
      ...(eventName(event) !== undefined ? { eventName: eventName(event) } : {}),
      ...rest,
      message: r(rest.message),
      logs: rest.logs.map(r),
      requests: requests.map(
        (t): RequestRecord => ({
          method: t.method,
          url: r(t.url),
          status: t.status,
          durationMs: t.durationMs,
          requestHeaders: Object.fromEntries(
            Object.entries(t.requestHeaders ?? {}).map(([k, v]) => [k, r(v)]),
          ),
          ...(t.error !== undefined ? { error: r(t.error) } : {}),
        }),
      ),
      at: new Date().toISOString(),
    };
  }

  record(input: RecordInput): void {
    if (this.pending.size >= MAX_PENDING_PUBLISHES) {
      if (this.droppedSinceWarning++ === 0) {
        this.log.warn(
          {
            subject: this.subject,
          },
          'delivery records are being dropped: too many failures at once',
        );
      }
      return;
    }
    if (this.droppedSinceWarning > 0) {
      this.log.warn({ dropped: this.droppedSinceWarning }, 'delivery records dropped during a failure burst');
      this.droppedSinceWarning = 0;
    }
    const p = this.js
      .publish(this.subject, JSON.stringify(this.build(input)))
      .catch((err) =>
        this.log.warn({ subject: this.subject, error: err }, 'could not write a delivery record'),
      )
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Waits for records still being written (shutdown), at most `timeoutMs`. */
  async flush(timeoutMs: number): Promise<void> {
    if (this.pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.pending]),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }
}

/** An instance's recent failed deliveries, newest first. */
export async function readDeliveryRecords(
  jsm: JetStreamManager,
  topology: Topology,
  ref: InstanceRef,
): Promise<DeliveryRecord[]> {
  const records: DeliveryRecord[] = [];
  for await (const m of readSubject(jsm, topology.deliveriesStream, deliveriesSubject(topology, ref))) {
    try {
      records.push(JSON.parse(new TextDecoder().decode(m.data)) as DeliveryRecord);
    } catch {
      // A foreign message on our subject: not ours to show.
    }
  }
  return records.reverse();
}
