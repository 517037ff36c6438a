/**
 * Segment files: naming, listing, chunked reads and tail recovery. A segment is named by the offset
 * of its first record (Kafka style, 20 digits) and holds records back to back (see record.ts).
 */
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeAt, type DecodedRecord } from './record.ts';
import { logError } from './errors.ts';

export const SEGMENT_SUFFIX = '.log';
/** Read granularity: large enough to amortise the syscall over hundreds of small records. */
export const READ_CHUNK_BYTES = 1024 * 1024;

export interface SegmentInfo {
  /** Offset of the first record in the segment. */
  base: number;
  path: string;
  /** Bytes on disk (for the active segment of a writer: bytes written and covered by a flush). */
  size: number;
}

export function segmentName(base: number): string {
  return String(base).padStart(20, '0') + SEGMENT_SUFFIX;
}

export function parseSegmentName(name: string): number | undefined {
  if (!/^\d{20}\.log$/.test(name)) return undefined;
  const n = Number(name.slice(0, 20));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Segments of a topic directory, oldest first. A missing directory is an empty topic. */
export async function listSegments(topicDir: string): Promise<SegmentInfo[]> {
  let names: string[];
  try {
    names = await readdir(topicDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: SegmentInfo[] = [];
  for (const name of names) {
    const base = parseSegmentName(name);
    if (base === undefined) continue;
    const path = join(topicDir, name);
    try {
      out.push({ base, path, size: (await stat(path)).size });
    } catch (err) {
      // Deleted by retention between readdir and stat: it is gone, which is what we would see next time.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return out.sort((a, b) => a.base - b.base);
}

export interface ReadResult {
  records: DecodedRecord[];
  /** Byte position after the last decoded record. */
  nextPos: number;
  /** Offset expected next. */
  nextOffset: number;
  /**
   * 'more': stopped at maxRecords or a chunk boundary — call again;
   * 'end': reached `end`, or the bytes before it hold only part of a record;
   * 'corrupt': a record at nextPos failed its length/CRC/offset check.
   */
  stop: 'more' | 'end' | 'corrupt';
  reason?: string;
}

async function readFull(fh: FileHandle, buf: Buffer, pos: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/**
 * Decode up to `maxRecords` records from [pos, end) of a segment file with (usually) one read.
 * Each record's stored offset must equal the expected one: a misplaced block is corruption too.
 */
export async function readRecords(
  fh: FileHandle,
  pos: number,
  end: number,
  expectOffset: number,
  maxRecords: number,
  maxBody: number,
): Promise<ReadResult> {
  let want = Math.min(end - pos, READ_CHUNK_BYTES);
  for (;;) {
    if (want <= 0) return { records: [], nextPos: pos, nextOffset: expectOffset, stop: 'end' };
    const buf = Buffer.allocUnsafe(want);
    const got = await readFull(fh, buf, pos);
    const records: DecodedRecord[] = [];
    let p = 0;
    let offset = expectOffset;
    while (records.length < maxRecords) {
      const r = decodeAt(buf, p, got, maxBody);
      if (r.status === 'ok') {
        if (r.record.offset !== offset) {
          return { records, nextPos: pos + p, nextOffset: offset, stop: 'corrupt', reason: `offset ${r.record.offset} where ${offset} was expected` };
        }
        records.push(r.record);
        p += r.record.size;
        offset++;
        continue;
      }
      if (r.status === 'corrupt') return { records, nextPos: pos + p, nextOffset: offset, stop: 'corrupt', reason: r.reason };
      // Incomplete within what we read.
      const atEnd = pos + got >= end || got < want;
      if (atEnd) return { records, nextPos: pos + p, nextOffset: offset, stop: 'end' };
      if (p > 0) return { records, nextPos: pos + p, nextOffset: offset, stop: 'more' };
      // The first record is larger than the chunk: read exactly that record (its length is sane,
      // decodeAt checked it against maxBody).
      want = Math.min(end - pos, 4 + buf.readUInt32BE(0));
      break;
    }
    if (records.length >= maxRecords) {
      return { records, nextPos: pos + p, nextOffset: offset, stop: pos + p >= end ? 'end' : 'more' };
    }
  }
}

export interface RecoveryResult {
  /** Byte length of the intact prefix. */
  validBytes: number;
  /** Offset after the last intact record. */
  nextOffset: number;
  /** Bytes after the intact prefix (truncated by the writer). */
  droppedBytes: number;
  /** Why the tail was dropped, if it was. */
  reason?: string;
}

/**
 * Scan a whole segment (the last one, at open). The intact prefix ends at the first record that is
 * incomplete or fails its check. Such a tail is what a crash mid-write leaves behind and is safe to
 * drop (it was never acknowledged). But if a valid record follows the bad one, the damage is in the
 * middle of data that was acknowledged: that is corruption, reported as LOG_ERR_CORRUPT, and the
 * caller must not truncate (an operator decides what to do with the file).
 */
export async function recoverSegment(seg: SegmentInfo, maxBody: number): Promise<RecoveryResult> {
  const fh = await open(seg.path, 'r');
  try {
    const size = (await fh.stat()).size;
    let pos = 0;
    let offset = seg.base;
    for (;;) {
      const r = await readRecords(fh, pos, size, offset, Number.MAX_SAFE_INTEGER, maxBody);
      pos = r.nextPos;
      offset = r.nextOffset;
      if (r.stop === 'more') continue;
      if (r.stop === 'end' && pos === size) return { validBytes: pos, nextOffset: offset, droppedBytes: 0 };
      const reason = r.stop === 'corrupt' ? r.reason! : 'incomplete record';
      if (r.stop === 'corrupt' && (await validRecordFollows(fh, pos, size, maxBody))) {
        throw logError('LOG_ERR_CORRUPT', `segment ${seg.path}: ${reason} at byte ${pos} (offset ${offset}) followed by intact records`);
      }
      return { validBytes: pos, nextOffset: offset, droppedBytes: size - pos, reason };
    }
  } finally {
    await fh.close();
  }
}

async function validRecordFollows(fh: FileHandle, pos: number, size: number, maxBody: number): Promise<boolean> {
  const head = Buffer.alloc(4);
  if ((await fh.read(head, 0, 4, pos)).bytesRead < 4) return false;
  const body = head.readUInt32BE(0);
  if (body === 0 || body > maxBody) return false;
  const next = pos + 4 + body;
  if (next >= size) return false;
  const len = Math.min(size - next, 4 + maxBody);
  const buf = Buffer.allocUnsafe(Math.min(len, READ_CHUNK_BYTES));
  const got = await readFull(fh, buf, next);
  if (got < 4) return false;
  const nextBody = buf.readUInt32BE(0);
  if (4 + nextBody > got) {
    // Big record: read it whole to check its CRC.
    if (nextBody > maxBody || next + 4 + nextBody > size) return false;
    const whole = Buffer.allocUnsafe(4 + nextBody);
    return (await readFull(fh, whole, next)) === whole.length && decodeAt(whole, 0, whole.length, maxBody).status === 'ok';
  }
  return decodeAt(buf, 0, got, maxBody).status === 'ok';
}
