/**
 * Messages between a thread that owns an event log and a worker thread that consumes it and
 * produces to it (`vigil start` runs ingest in a worker so indexing never competes with the
 * gateway's event loop; ingest publishes alerts and OCSF records back onto the owner's log).
 *
 * Record values travel packed in one transferred ArrayBuffer per batch: posting Buffers one by one
 * would structured-clone each view's whole backing store (a pooled slab or a segment read buffer).
 */
import type { ConsumedRecord, ConsumerOptions, LogRecord } from '../types.ts';

export type ToOwner =
  | { op: 'consume'; consumer: number; options: ConsumerOptions }
  | { op: 'ack'; consumer: number; batch: number; error?: { code?: string; message: string; retriable: boolean } }
  | { op: 'stop'; consumer: number }
  | { op: 'ensureTopics'; call: number; topics: string[] }
  /** Append records to `topic` with the owner's producer; answered by `done` once durable there. */
  | { op: 'send'; call: number; topic: string; records: PackedLogRecord[]; values: ArrayBuffer };

export type ToWorker =
  | { op: 'batch'; consumer: number; batch: number; topic: string; partition: number; records: PackedRecord[]; values: ArrayBuffer }
  | { op: 'running'; consumer: number; error?: { code?: string; message: string } }
  | { op: 'stopped'; consumer: number }
  | { op: 'done'; call: number; error?: { code?: string; message: string; retriable?: boolean } };

/** A record without its value; the value is `values[start, start + length)`. */
export type PackedRecord = Omit<ConsumedRecord, 'value' | 'topic' | 'partition'> & { start: number; length: number };

/** A produced record without its value (same packing as consumed ones). */
export type PackedLogRecord = Omit<LogRecord, 'value'> & { start: number; length: number };

export function packRecords(records: ConsumedRecord[]): { records: PackedRecord[]; values: ArrayBuffer } {
  let total = 0;
  for (const r of records) total += r.value.length;
  const values = new ArrayBuffer(total);
  const view = new Uint8Array(values);
  let pos = 0;
  const packed = records.map((r) => {
    view.set(r.value, pos);
    const p: PackedRecord = { key: r.key, offset: r.offset, timestamp: r.timestamp, start: pos, length: r.value.length };
    if (r.headers) p.headers = r.headers;
    pos += r.value.length;
    return p;
  });
  return { records: packed, values };
}

export function packLogRecords(records: LogRecord[]): { records: PackedLogRecord[]; values: ArrayBuffer } {
  let total = 0;
  for (const r of records) total += r.value.length;
  const values = new ArrayBuffer(total);
  const view = new Uint8Array(values);
  let pos = 0;
  const packed = records.map((r) => {
    view.set(r.value, pos);
    const p: PackedLogRecord = { key: r.key, start: pos, length: r.value.length };
    if (r.headers) p.headers = r.headers;
    pos += r.value.length;
    return p;
  });
  return { records: packed, values };
}

export function unpackLogRecords(records: PackedLogRecord[], values: ArrayBuffer): LogRecord[] {
  return records.map(({ start, length, ...r }) => ({ ...r, value: Buffer.from(values, start, length) }));
}

export function unpackRecords(topic: string, partition: number, records: PackedRecord[], values: ArrayBuffer): ConsumedRecord[] {
  return records.map(({ start, length, ...r }) => ({ ...r, topic, partition, value: Buffer.from(values, start, length) }));
}

export function errorInfo(err: unknown): { code?: string; message: string; retriable: boolean } {
  const e = err as { code?: unknown; message?: unknown; retriable?: unknown };
  return {
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    message: typeof e?.message === 'string' ? e.message : String(err),
    retriable: e?.retriable === true,
  };
}
