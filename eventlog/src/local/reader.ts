/**
 * A read cursor over one topic: a segment, a byte position in it and the offset expected there.
 * Reads go up to the topic's high watermark (in-process writer) or the file size (read-only view
 * of another process's log). Any record that fails its check inside the durable range is
 * LOG_ERR_CORRUPT — never skipped.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { logError } from './errors.ts';
import type { DecodedRecord } from './record.ts';
import { readRecords, type SegmentInfo } from './segment.ts';
import type { TopicState } from './topic.ts';

export class TopicReader {
  private seg: SegmentInfo | null = null;
  private fh: FileHandle | null = null;
  private pos = 0;

  constructor(
    private readonly topic: TopicState,
    /** Next offset to read. */
    public offset: number,
    private readonly maxBody: number,
  ) {}

  /** Up to `max` records from the cursor on; [] when caught up. */
  async read(max: number): Promise<DecodedRecord[]> {
    const t = this.topic;
    for (;;) {
      if (!t.readOnly && this.offset >= t.hw) return [];
      if (!this.seg || !t.segments.includes(this.seg)) {
        if (t.readOnly) await t.refresh();
        if (!(await this.locate())) return [];
      }
      const seg = this.seg!;
      const idx = t.segments.indexOf(seg);
      const last = idx === t.segments.length - 1;
      const end = t.readOnly ? (await this.fh!.stat()).size : seg.size;
      if (this.pos >= end) {
        if (last) {
          if (t.readOnly) {
            // The writer (another process) may have rolled since we last looked.
            await t.refresh();
            if (t.segments.includes(seg) && seg !== t.segments[t.segments.length - 1]) continue;
          }
          return [];
        }
        const next = t.segments[idx + 1]!;
        if (next.base !== this.offset) {
          throw logError('LOG_ERR_CORRUPT', `topic ${t.name}: segment ${next.base} follows a segment ending at offset ${this.offset}`);
        }
        await this.openSegment(next);
        continue;
      }
      const r = await readRecords(this.fh!, this.pos, end, this.offset, max, this.maxBody);
      this.pos = r.nextPos;
      this.offset = r.nextOffset;
      if (r.records.length > 0) return r.records;
      if (r.stop === 'more') continue;
      // Nothing decodable before `end`. In the writer's process `end` is durable and complete, so
      // this is damage. A read-only view may have caught a write in progress at the very tail.
      if (t.readOnly && last) return [];
      throw logError(
        'LOG_ERR_CORRUPT',
        `topic ${t.name} segment ${seg.base}: ${r.reason ?? 'truncated record'} at byte ${r.nextPos} (offset ${r.nextOffset})`,
      );
    }
  }

  /** Position on the segment holding `offset` (scanning from its start). False if no data yet. */
  private async locate(): Promise<boolean> {
    const t = this.topic;
    if (t.segments.length === 0) return false;
    if (this.offset < t.startOffset) this.offset = t.startOffset; // deleted by retention: skip ahead
    let seg = t.segments[0]!;
    for (const s of t.segments) if (s.base <= this.offset) seg = s;
    const target = this.offset;
    this.offset = seg.base;
    await this.openSegment(seg);
    while (this.offset < target) {
      const end = t.readOnly ? (await this.fh!.stat()).size : seg.size;
      const r = await readRecords(this.fh!, this.pos, end, this.offset, target - this.offset, this.maxBody);
      this.pos = r.nextPos;
      this.offset = r.nextOffset;
      if (r.stop === 'corrupt') {
        throw logError('LOG_ERR_CORRUPT', `topic ${t.name} segment ${seg.base}: ${r.reason} at byte ${r.nextPos}`);
      }
      if (r.records.length === 0 && r.stop === 'end') break; // offset past the end of this segment's data
    }
    return true;
  }

  private async openSegment(seg: SegmentInfo): Promise<void> {
    await this.close();
    try {
      this.fh = await open(seg.path, 'r');
    } catch (err) {
      throw logError('LOG_ERR_IO', `cannot open segment ${seg.path}`, err);
    }
    this.seg = seg;
    this.pos = 0;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    this.seg = null;
    if (fh) await fh.close().catch(() => undefined);
  }
}

/** Offset after the last record of a topic, scanning the tail in read-only mode. */
export async function endOffset(topic: TopicState, maxBody: number): Promise<number> {
  if (!topic.readOnly) return topic.hw;
  await topic.refresh();
  const last = topic.segments[topic.segments.length - 1];
  if (!last) return 0;
  const r = new TopicReader(topic, last.base, maxBody);
  try {
    let off = last.base;
    for (;;) {
      const recs = await r.read(10_000);
      if (recs.length === 0) return off;
      off = recs[recs.length - 1]!.offset + 1;
    }
  } finally {
    await r.close();
  }
}
