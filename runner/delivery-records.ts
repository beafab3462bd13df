// Failed delivery attempts, written to the instance's subject of the bounded deliveries stream and read back
// by `dfn deliveries`. Recording never holds up delivery: publishes are tracked, capped, and flushed at stop.
// A record always fits what NATS takes: one too large is shrunk (fitRecord), never dropped for its size.

import type { JetStreamClient, JetStreamManager } from 'nats';
import type { SegmentEvent } from '../api/events.js';
import {
  DELIVERY_RECORD_MAX_BYTES,
  type DeliveryRecord,
  deliveriesSubject,
  type InstanceRef,
  type RequestRecord,
  type Topology,
} from '../api/jetstream.js';
import type { Logger } from '../lib/telemetry.js';
import { truncateText } from '../lib/text.js';
import type { Redactor, RequestTrace } from '../sandbox/index.js';
import { readSubject } from './stream-reader.js';

/** Record publishes allowed in flight; past this a failure storm drops records rather than slow delivery. */
const MAX_PENDING_PUBLISHES = 512;
/**
 * Bytes of records in flight allowed (their JSON): at the record bound, 512 of them would hold 128 MiB of
 * a runner's memory while NATS is slow to acknowledge; past this a storm of large failures drops records
 * the same way.
 */
export const MAX_PENDING_RECORD_BYTES = 32 * 1024 * 1024;

/**
 * Bytes of the server's max_payload left for what a publish carries besides the record: its headers
 * (none today; a message id or trace headers would take well under this).
 */
export const RECORD_HEADROOM_BYTES = 1024;

/** The most a record's JSON may take: DELIVERY_RECORD_MAX_BYTES, and the server's max_payload less headroom. */
export function recordCap(maxPayload: number | undefined): number {
  const server =
    typeof maxPayload === 'number' && maxPayload > 0
      ? maxPayload - RECORD_HEADROOM_BYTES
      : Number.POSITIVE_INFINITY;
  return Math.max(0, Math.min(DELIVERY_RECORD_MAX_BYTES, server));
}

const utf8Bytes = (json: string) => Buffer.byteLength(json);

/**
 * The record's JSON, within `cap` bytes: as it is when it fits (one byte count, the usual case), else
 * shrunk the same way every time. Kept whole: identity, error type, counts and times. Then the message,
 * cut (marked …) only if it alone would not fit; then the first log lines and request traces that fit,
 * neither crowding the other out (each may use half the room left, and what one does not need goes to
 * the other); what is left out is counted in `logsOmitted` and `requestsOmitted`. Only where even that
 * frame would not fit (a server with a tiny max_payload, an event name or messageId of kilobytes) are
 * the event name and then the messageId cut too.
 */
export function fitRecord(record: DeliveryRecord, cap: number): string {
  const whole = JSON.stringify(record);
  if (utf8Bytes(whole) <= cap) return whole;
  const { logs, requests } = record;
  // Everything but the message, logs and traces; measured with the omission counts at their largest.
  let frame: DeliveryRecord = { ...record, message: '', logs: [], requests: [] };
  const roomLeft = () =>
    cap - utf8Bytes(JSON.stringify({ ...frame, logsOmitted: logs.length, requestsOmitted: requests.length }));
  let room = roomLeft();
  for (const field of ['eventName', 'messageId'] as const) {
    const value = frame[field];
    if (room >= 0 || typeof value !== 'string') continue;
    frame = { ...frame, [field]: cutToFit(value, jsonBytes(value) + room) };
    room = roomLeft();
  }
  room = Math.max(0, room);
  // The message's quotes are counted in the frame already.
  const message = jsonBytes(record.message) - 2 <= room ? record.message : cutToFit(record.message, room + 2);
  room -= jsonBytes(message) - 2;
  // An element costs its JSON and a comma.
  const logSizes = logs.map((line) => jsonBytes(line) + 1);
  const requestSizes = requests.map((request) => utf8Bytes(JSON.stringify(request)) + 1);
  const logsNeed = sum(logSizes);
  const requestsNeed = sum(requestSizes);
  const half = Math.floor(room / 2);
  const logsRoom = logsNeed <= half ? logsNeed : requestsNeed <= half ? room - requestsNeed : half;
  const keptLogs = prefixWithin(logSizes, logsRoom);
  const keptRequests = prefixWithin(requestSizes, room - sum(logSizes.slice(0, keptLogs)));
  return JSON.stringify({
    ...frame,
    message,
    logs: logs.slice(0, keptLogs),
    requests: requests.slice(0, keptRequests),
    ...(keptLogs < logs.length ? { logsOmitted: logs.length - keptLogs } : {}),
    ...(keptRequests < requests.length ? { requestsOmitted: requests.length - keptRequests } : {}),
  } satisfies DeliveryRecord);
}

function jsonBytes(text: string): number {
  return utf8Bytes(JSON.stringify(text));
}

function sum(sizes: readonly number[]): number {
  let total = 0;
  for (const size of sizes) total += size;
  return total;
}

/** How many of the first sizes add up to at most `room`. */
function prefixWithin(sizes: readonly number[], room: number): number {
  let used = 0;
  for (let i = 0; i < sizes.length; i++) {
    used += sizes[i]!;
    if (used > room) return i;
  }
  return sizes.length;
}

/** The longest cut of `text` (marked …) whose JSON string takes at most `maxBytes`; '' when none does. */
function cutToFit(text: string, maxBytes: number): string {
  let lo = 0;
  let hi = text.length;
  // The longest length whose cut fits (a cut to n keeps n - 1 characters and the mark).
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (jsonBytes(truncateText(text, mid)) <= maxBytes) lo = mid;
    else hi = mid - 1;
  }
  return lo > 0 ? truncateText(text, lo) : '';
}

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
  /** JSON bytes of the records in `pending`. */
  private pendingBytes = 0;
  private droppedSinceWarning = 0;

  constructor(
    private readonly js: JetStreamClient,
    topology: Topology,
    private readonly identity: RecordIdentity,
    private readonly redact: Redactor,
    private readonly log: Logger,
    /** The server's max_payload, as the connection knows it now (`nc.info?.max_payload`). */
    private readonly maxPayload: () => number | undefined,
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
      this.drop();
      return;
    }
    const json = fitRecord(this.build(input), recordCap(this.maxPayload()));
    const bytes = Buffer.byteLength(json);
    if (this.pendingBytes + bytes > MAX_PENDING_RECORD_BYTES) {
      this.drop();
      return;
    }
    if (this.droppedSinceWarning > 0) {
      this.log.warn({ dropped: this.droppedSinceWarning }, 'delivery records dropped during a failure burst');
      this.droppedSinceWarning = 0;
    }
    this.pendingBytes += bytes;
    const p = this.js
      .publish(this.subject, json)
      .catch((err) =>
        this.log.warn({ subject: this.subject, error: err }, 'could not write a delivery record'),
      )
      .finally(() => {
        this.pending.delete(p);
        this.pendingBytes -= bytes;
      });
    this.pending.add(p);
  }

  /** Too many records, or too many bytes of them, are still being written: this one is dropped, counted. */
  private drop(): void {
    if (this.droppedSinceWarning++ === 0) {
      this.log.warn(
        { subject: this.subject, inFlight: this.pending.size, inFlightBytes: this.pendingBytes },
        'delivery records are being dropped: too many failures at once',
      );
    }
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
