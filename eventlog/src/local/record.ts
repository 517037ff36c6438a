/**
 * On-disk record codec (pure: bytes in, records out; no I/O).
 *
 *   off  size  field
 *   0    4     body_length  u32 BE — bytes after this field
 *   4    4     crc          u32 BE — CRC-32 (zlib.crc32, IEEE) of bytes [8, 4 + body_length)
 *   8    8     offset       u64 BE (as two u32: offsets stay below 2^53)
 *   16   8     timestamp    u64 BE, ms since epoch (two u32)
 *   24   1     format       1
 *   25   2     key_length   u16 BE, then key (UTF-8)
 *   ..   2     header_count u16 BE, then per header: u16 name length, name, u32 value length, value
 *   ..   4     value_length u32 BE, then value
 *
 * The offset is stored in the record so a reader can check it is where it expects to be (a
 * misplaced or duplicated block is detected, not just a flipped bit).
 */
import { crc32 } from 'node:zlib';
import type { LogRecord } from '../types.ts';
import { logError } from './errors.ts';

export const RECORD_FORMAT = 1;
/** length + crc + offset + timestamp + format + key_length + header_count + value_length */
export const RECORD_OVERHEAD = 4 + 4 + 8 + 8 + 1 + 2 + 2 + 4;
const MIN_BODY = RECORD_OVERHEAD - 4;
/** Positions of the fixed fields from a record's start (the table above). */
export const FORMAT_AT = 24;
export const KEY_LENGTH_AT = 25;
const KEY_AT = 27;
const TWO_32 = 0x1_0000_0000;

if (typeof crc32 !== 'function') {
  // Node 20.20+ has zlib.crc32; the engines field says >=20 but older 20.x lack it. Fail loudly
  // rather than silently writing unchecked records.
  throw new Error('node:zlib crc32 is required (Node >= 20.15)');
}

/** Encoded size of one record; validates the record's shape (it is the first thing send() does). */
export function encodedSize(r: LogRecord): number {
  if (!Buffer.isBuffer(r.value)) throw logError('LOG_ERR_INVALID_RECORD', 'record value must be a Buffer');
  if (typeof r.key !== 'string') throw logError('LOG_ERR_INVALID_RECORD', 'record key must be a string');
  const keyLen = Buffer.byteLength(r.key);
  if (keyLen > 0xffff) throw logError('LOG_ERR_INVALID_RECORD', 'record key longer than 65535 bytes');
  let size = RECORD_OVERHEAD + keyLen + r.value.length;
  if (r.headers) {
    let n = 0;
    for (const name in r.headers) {
      const v = r.headers[name];
      if (typeof v !== 'string') throw logError('LOG_ERR_INVALID_RECORD', 'header values must be strings');
      const nameLen = Buffer.byteLength(name);
      if (nameLen > 0xffff) throw logError('LOG_ERR_INVALID_RECORD', 'header name longer than 65535 bytes');
      size += 6 + nameLen + Buffer.byteLength(v);
      n++;
    }
    if (n > 0xffff) throw logError('LOG_ERR_INVALID_RECORD', 'more than 65535 headers');
  }
  return size;
}

/**
 * Encode `r` at `pos` in `buf` (which has room, per encodedSize) with its offset, timestamp and CRC
 * left for stampRecord: what a record run holds until the log appends it. Returns the new position.
 */
export function encodeUnstamped(buf: Buffer, pos: number, r: LogRecord): number {
  const start = pos;
  pos = writeKey(buf, pos, r.key);
  const countPos = pos;
  pos += 2;
  let count = 0;
  if (r.headers) {
    for (const name in r.headers) {
      const nameLen = buf.write(name, pos + 2, 'utf8');
      buf.writeUInt16BE(nameLen, pos);
      pos += 2 + nameLen;
      const vLen = buf.write(r.headers[name]!, pos + 4, 'utf8');
      buf.writeUInt32BE(vLen, pos);
      pos += 4 + vLen;
      count++;
    }
  }
  buf.writeUInt16BE(count, countPos);
  buf.writeUInt32BE(r.value.length, pos);
  pos += 4;
  buf.set(r.value, pos);
  pos += r.value.length;
  buf.writeUInt32BE(pos - start - 4, start);
  return pos;
}

/**
 * The fixed head of a record whose value the caller writes in place (no headers): format, key,
 * a header count of 0. Returns where the value's length goes; the value follows it (+4), and
 * finishInPlace completes the record once the value's end is known.
 */
export function beginInPlace(buf: Buffer, pos: number, key: Buffer): number {
  buf[pos + FORMAT_AT] = RECORD_FORMAT;
  buf.writeUInt16BE(key.length, pos + KEY_LENGTH_AT);
  buf.set(key, pos + KEY_AT);
  const p = pos + KEY_AT + key.length;
  buf[p] = 0; // header_count u16 BE = 0
  buf[p + 1] = 0;
  return p + 2;
}

/** Complete a record begun with beginInPlace at `start`: its value ends at `end`. */
export function finishInPlace(buf: Buffer, start: number, lengthAt: number, end: number): void {
  buf.writeUInt32BE(end - lengthAt - 4, lengthAt);
  buf.writeUInt32BE(end - start - 4, start);
}

function writeKey(buf: Buffer, pos: number, key: string): number {
  buf[pos + FORMAT_AT] = RECORD_FORMAT;
  const keyLen = buf.write(key, pos + KEY_AT, 'utf8');
  buf.writeUInt16BE(keyLen, pos + KEY_LENGTH_AT);
  return pos + KEY_AT + keyLen;
}

/**
 * Give the encoded record at `start` (ending at `end`) its offset and timestamp, then its CRC:
 * done by the log as it appends, in offset order.
 */
export function stampRecord(buf: Buffer, start: number, end: number, offset: number, timestamp: number): void {
  buf.writeUInt32BE(Math.floor(offset / TWO_32), start + 8);
  buf.writeUInt32BE(offset % TWO_32, start + 12);
  buf.writeUInt32BE(Math.floor(timestamp / TWO_32), start + 16);
  buf.writeUInt32BE(timestamp % TWO_32, start + 20);
  buf.writeUInt32BE(crc32(buf.subarray(start + 8, end)), start + 4);
}

export interface DecodedRecord {
  offset: number;
  timestamp: number;
  key: string;
  headers?: Record<string, string>;
  /** A view into the read buffer (zero copy); the buffer is freshly allocated per read. */
  value: Buffer;
  /** Total encoded size, length prefix included. */
  size: number;
}

/**
 * What decodeAt found at a position:
 * 'ok' — a complete record with a valid CRC;
 * 'incomplete' — fewer bytes than the record needs (a torn tail, or data not yet read/written);
 * 'corrupt' — framing or CRC is wrong.
 */
export type DecodeResult =
  | { status: 'ok'; record: DecodedRecord }
  | { status: 'incomplete' }
  | { status: 'corrupt'; reason: string };

/**
 * Decode one record at `pos` of `buf[0, end)`. `maxBody` bounds the length prefix: a garbage length
 * is reported as corrupt instead of making the caller read gigabytes.
 */
export function decodeAt(buf: Buffer, pos: number, end: number, maxBody: number): DecodeResult {
  if (end - pos < 4) return { status: 'incomplete' };
  const body = buf.readUInt32BE(pos);
  if (body < MIN_BODY || body > maxBody) return { status: 'corrupt', reason: `bad length ${body}` };
  const recEnd = pos + 4 + body;
  if (recEnd > end) return { status: 'incomplete' };
  const crc = buf.readUInt32BE(pos + 4);
  if (crc32(buf.subarray(pos + 8, recEnd)) !== crc) return { status: 'corrupt', reason: 'CRC mismatch' };
  // From here the bytes are what the writer wrote; framing errors would mean a writer bug.
  const offset = buf.readUInt32BE(pos + 8) * TWO_32 + buf.readUInt32BE(pos + 12);
  const timestamp = buf.readUInt32BE(pos + 16) * TWO_32 + buf.readUInt32BE(pos + 20);
  const parsed = parseRecord(buf, pos, recEnd);
  if (typeof parsed === 'string') return { status: 'corrupt', reason: parsed };
  return { status: 'ok', record: { offset, timestamp, ...parsed, size: 4 + body } };
}

/**
 * Why the framing inside the record at `pos` ending at `recEnd` (its length prefix already checked)
 * is wrong, or undefined when it is right: the format byte, the key, the headers and the value
 * must end exactly at the record's end. Decodes nothing (the log checks every run it is handed).
 */
export function framingError(buf: Buffer, pos: number, recEnd: number): string | undefined {
  if (buf[pos + FORMAT_AT] !== RECORD_FORMAT) return `unknown format ${buf[pos + FORMAT_AT]}`;
  let p = pos + KEY_AT + buf.readUInt16BE(pos + KEY_LENGTH_AT);
  if (p + 2 > recEnd) return 'key runs past the record';
  const count = buf.readUInt16BE(p);
  p += 2;
  for (let i = 0; i < count; i++) {
    if (p + 2 > recEnd) return 'headers run past the record';
    p += 2 + buf.readUInt16BE(p);
    if (p + 4 > recEnd) return 'headers run past the record';
    p += 4 + buf.readUInt32BE(p);
  }
  if (p + 4 > recEnd) return 'inconsistent record framing';
  if (p + 4 + buf.readUInt32BE(p) !== recEnd) return 'inconsistent record framing';
  return undefined;
}

/**
 * Key, headers and value of the record at `pos` ending at `recEnd` (its length prefix already
 * checked), or why its framing is wrong. The value is a view into `buf`.
 */
export function parseRecord(buf: Buffer, pos: number, recEnd: number): LogRecord | string {
  const bad = framingError(buf, pos, recEnd);
  if (bad) return bad;
  let p = pos + KEY_LENGTH_AT;
  const keyLen = buf.readUInt16BE(p);
  const key = buf.toString('utf8', p + 2, p + 2 + keyLen);
  p += 2 + keyLen;
  const count = buf.readUInt16BE(p);
  p += 2;
  let headers: Record<string, string> | undefined;
  if (count > 0) {
    headers = {};
    for (let i = 0; i < count; i++) {
      const nameLen = buf.readUInt16BE(p);
      const name = buf.toString('utf8', p + 2, p + 2 + nameLen);
      p += 2 + nameLen;
      const vLen = buf.readUInt32BE(p);
      headers[name] = buf.toString('utf8', p + 4, p + 4 + vLen);
      p += 4 + vLen;
    }
  }
  const value = buf.subarray(p + 4, recEnd);
  return headers ? { key, headers, value } : { key, value };
}
