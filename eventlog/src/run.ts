/**
 * Record runs: a send's records packed in one buffer, already in the local log's record format
 * (local/record.ts) with only their offsets, timestamps and CRCs left for the log to fill in as it
 * appends them. It is the cheapest form to hand the local log (one copy per run, no object per
 * record), and the gateway's recorder seals frames straight into it (RecordRunBuilder's in-place
 * values: no buffer per frame). Any other producer reads the records back out (recordsOf).
 */
import type { LogRecord } from './types.ts';
import { logError } from './local/errors.ts';
import { RECORD_OVERHEAD, beginInPlace, encodeUnstamped, encodedSize, finishInPlace, framingError, parseRecord } from './local/record.ts';

export interface RecordRun {
  /** Records from byte 0 to `bytes`, each with its length prefix. */
  buf: Buffer;
  bytes: number;
  count: number;
}

/** Record runs kept for reuse by a builder (more would only be idle memory), each at most SPARE_MAX_BYTES. */
const SPARE_RUNS = 4;
const SPARE_MAX_BYTES = 4 * 1024 * 1024;
/** Room reserved after a record's head for a value written in place, before the writer asks for more. */
const IN_PLACE_ROOM = 1024;
const EMPTY = Buffer.alloc(0);

/**
 * Appends records to a growable buffer; `take()` hands the run over and starts the next one in a
 * recycled buffer when one came back (`recycle`, once the run's send settled), else a fresh one.
 *
 * Values written in place: `beginValue(key)` writes the record's head and returns where its value
 * starts in `buf`; the caller writes the value there (asking `growValue` for room when it does not
 * fit: `buf` may then be a new buffer) and ends it with `endValue(end)`.
 */
export class RecordRunBuilder {
  buf: Buffer;
  private used = 0;
  private count = 0;
  /** The record being written in place: its start and where its value length goes (-1: none). */
  private head = -1;
  private lengthAt = 0;
  private readonly spare: Buffer[] = [];

  constructor(private readonly initialBytes = 64 * 1024) {
    this.buf = EMPTY;
  }

  /** Bytes of the records added since the last take(). */
  get bytes(): number {
    return this.used;
  }

  /** Add a record (its value is copied). Throws LOG_ERR_INVALID_RECORD for a malformed one. */
  add(record: LogRecord): number {
    this.assertNoValueOpen();
    const size = encodedSize(record);
    this.reserve(size);
    this.used = encodeUnstamped(this.buf, this.used, record);
    this.count++;
    return size;
  }

  /** Start a record keyed `key` (UTF-8 bytes, no headers) whose value the caller writes at the returned position. */
  beginValue(key: Buffer): number {
    this.assertNoValueOpen();
    if (key.length > 0xffff) throw logError('LOG_ERR_INVALID_RECORD', 'record key longer than 65535 bytes');
    this.reserve(RECORD_OVERHEAD + key.length + IN_PLACE_ROOM);
    this.head = this.used;
    this.lengthAt = beginInPlace(this.buf, this.used, key);
    return this.lengthAt + 4;
  }

  /** Room for `bytes` of value from `valueAt` (a position beginValue returned): `buf` may be replaced. */
  growValue(valueAt: number, bytes: number): void {
    if (this.head < 0) throw new Error('growValue without beginValue');
    this.grow(valueAt + bytes);
  }

  /** The value written in place ends at `end`: the record is complete. Returns its size. */
  endValue(end: number): number {
    if (this.head < 0 || !Number.isInteger(end) || end < this.lengthAt + 4 || end > this.buf.length) throw new Error('endValue out of place');
    finishInPlace(this.buf, this.head, this.lengthAt, end);
    const size = end - this.head;
    this.used = end;
    this.count++;
    this.head = -1;
    return size;
  }

  /** Drop the record begun with beginValue (its value could not be written): the run is as before it. */
  abortValue(): void {
    this.head = -1;
  }

  /**
   * Room for whole records written straight into `buf` by a trusted writer (the native batch
   * sealer): at least `bytes` from the returned position, where they start. `recordsWritten`
   * then says how far they went. The log still checks every record's framing (runSizes).
   */
  reserveRecords(bytes: number): number {
    this.assertNoValueOpen();
    this.reserve(bytes);
    return this.used;
  }

  /**
   * `count` records were written by reserveRecords' caller, from where it said up to `end`. Their
   * length prefixes must tile that span exactly (a bad one is caught here, where it was written,
   * not when the run is sent and refused whole).
   */
  recordsWritten(end: number, count: number): void {
    this.assertNoValueOpen();
    if (!Number.isInteger(end) || end < this.used || end > this.buf.length || !Number.isInteger(count) || count < 0) {
      throw new Error('recordsWritten out of place');
    }
    let p = this.used;
    let n = 0;
    while (p < end && end - p >= RECORD_OVERHEAD) {
      const size = 4 + this.buf.readUInt32BE(p);
      if (size < RECORD_OVERHEAD) break;
      p += size;
      n++;
    }
    if (p !== end || n !== count) throw new Error(`recordsWritten out of place: ${count} records said, ${n} found up to ${end}`);
    this.used = end;
    this.count += count;
  }

  /** The records added so far as a run (its buffer is the caller's until recycled), or undefined when none. */
  take(): RecordRun | undefined {
    this.assertNoValueOpen();
    if (this.count === 0) return undefined;
    const run = { buf: this.buf, bytes: this.used, count: this.count };
    // The next buffer is allocated when the first record needs it (a one-off builder never does).
    this.buf = this.spare.pop() ?? EMPTY;
    this.used = 0;
    this.count = 0;
    return run;
  }

  /** A taken run whose send settled: its buffer takes the next records. */
  recycle(run: RecordRun): void {
    // Oversized ones (a burst grew the run) are let go, so memory shrinks back after it.
    if (this.spare.length < SPARE_RUNS && run.buf.length <= SPARE_MAX_BYTES && run.buf !== this.buf) this.spare.push(run.buf);
  }

  private reserve(n: number): void {
    if (this.used + n > this.buf.length) this.grow(this.used + n);
  }

  private grow(atLeast: number): void {
    if (atLeast <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.initialBytes, this.buf.length * 2, atLeast));
    // The record being written in place moves with the rest (its value may be partly written).
    this.buf.copy(next, 0, 0, this.head >= 0 ? this.buf.length : this.used);
    this.buf = next;
  }

  private assertNoValueOpen(): void {
    if (this.head >= 0) throw new Error('a record value written in place was not ended');
  }
}

/**
 * Check a run's framing (every length prefix in bounds, each record's inside well formed, sizes at
 * most `maxRecordBytes`, the count right) and return each record's size in order. Throws LOG_ERR_INVALID_RECORD / LOG_ERR_TOO_LARGE.
 */
export function runSizes(run: RecordRun, maxRecordBytes: number): number[] {
  if (!run || !Buffer.isBuffer(run.buf) || !Number.isInteger(run.bytes) || run.bytes < 0 || run.bytes > run.buf.length) {
    throw logError('LOG_ERR_INVALID_RECORD', 'malformed record run');
  }
  const sizes: number[] = [];
  for (let p = 0; p < run.bytes; ) {
    if (run.bytes - p < RECORD_OVERHEAD) throw logError('LOG_ERR_INVALID_RECORD', 'record run ends inside a record');
    const size = 4 + run.buf.readUInt32BE(p);
    if (size < RECORD_OVERHEAD || p + size > run.bytes) throw logError('LOG_ERR_INVALID_RECORD', `record run: bad record length at ${p}`);
    if (size > maxRecordBytes) throw logError('LOG_ERR_TOO_LARGE', `record of ${size} bytes exceeds max_record_bytes ${maxRecordBytes}`);
    // The log stamps a valid CRC over whatever is inside: a record it could not read back later
    // must be refused here, not written.
    const bad = framingError(run.buf, p, p + size);
    if (bad) throw logError('LOG_ERR_INVALID_RECORD', `record run: ${bad} at ${p}`);
    sizes.push(size);
    p += size;
  }
  if (sizes.length !== run.count) throw logError('LOG_ERR_INVALID_RECORD', `record run holds ${sizes.length} records, says ${run.count}`);
  return sizes;
}

/** The run's records as LogRecords (values are views into the run's buffer), for producers that take those. */
export function recordsOf(run: RecordRun): LogRecord[] {
  const out: LogRecord[] = [];
  let p = 0;
  for (const size of runSizes(run, Infinity)) {
    const r = parseRecord(run.buf, p, p + size);
    if (typeof r === 'string') throw logError('LOG_ERR_INVALID_RECORD', `record run: ${r}`);
    out.push(r);
    p += size;
  }
  return out;
}

/** A run of `records` (validated and copied), sized exactly. */
export function runOf(records: LogRecord[]): RecordRun {
  if (!Array.isArray(records)) throw logError('LOG_ERR_INVALID_RECORD', 'records must be an array');
  let total = 0;
  for (const r of records) total += encodedSize(r);
  const b = new RecordRunBuilder(Math.max(1, total));
  for (const r of records) b.add(r);
  return b.take() ?? { buf: Buffer.alloc(0), bytes: 0, count: 0 };
}
