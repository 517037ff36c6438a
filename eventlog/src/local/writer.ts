/**
 * Group-commit writer: the hot path.
 *
 * `append()` copies a record run (run.ts) into a per-topic pending buffer and stamps its records
 * with their offsets and CRCs (no per-record allocation, no Buffer.concat, no syscall), and
 * returns a promise. A flush then does, per touched topic, ONE positional write of everything
 * pending (two if the segment rolls) and ONE fsync, and resolves every promise it covers. Flushes
 * never overlap: sends arriving during a flush's fsync join the next one, which is what makes the
 * commit "group".
 *
 * Policies:
 * - 'group': at most one group commit per fsync_interval_ms (measured from the previous commit's
 *   start), so an idle log commits a lone send at once (no added latency) and a busy one batches
 *   everything that arrived during the interval and the previous fsync. Past max_pending_bytes it
 *   commits without waiting for the interval (bounds memory).
 * - 'always': commits as soon as the previous commit finished (setImmediate), fsync included;
 *   batching then comes only from sends that arrived while an fsync was in flight.
 * - 'never': like 'always' but without fsync (the promise resolves after write()).
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { RecordRun } from '../run.ts';
import type { LocalEventLogConfig } from './config.ts';
import { logError } from './errors.ts';
import { fsyncDir } from './offsets.ts';
import { stampRecord } from './record.ts';
import { segmentName, type SegmentInfo } from './segment.ts';
import type { PendingChunk, TopicState } from './topic.ts';

const INITIAL_CHUNK_BYTES = 64 * 1024;
/**
 * Chunk buffers a writer keeps once written, for the next ones (up to this many, each at most
 * SPARE_MAX_BYTES): a busy log would otherwise allocate a fresh external buffer every group commit,
 * and that churn is what makes V8 run full collections under load.
 */
const SPARE_CHUNKS = 4;
const SPARE_MAX_BYTES = 4 * 1024 * 1024;

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupCommitWriter {
  private waiters: Waiter[] = [];
  private dirty = new Set<TopicState>();
  private pendingBytes = 0;
  private lastFlushStart = 0;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private flushing: Promise<void> | null = null;
  private failed: Error | null = null;
  private readonly spare: Buffer[] = [];
  /** Counters for usage()/metrics: group commits done and records written. */
  readonly stats = { flushes: 0, writes: 0, fsyncs: 0, records: 0 };

  constructor(
    private readonly config: LocalEventLogConfig,
    /** Called after a flush made bytes durable (the log accounts usage and wakes consumers). */
    private readonly onDurable: (topics: TopicState[], bytes: number) => void,
  ) {}

  /**
   * Append a run's records (each `sizes[i]` bytes, checked by the caller) to the topic's pending
   * chunk, giving them their offsets (in call order), timestamp and CRCs, and return a promise
   * resolved once they are durable. The run's buffer is not referred to after this returns.
   */
  append(topic: TopicState, run: RecordRun, sizes: number[]): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    const timestamp = Date.now();
    const segmentBytes = this.config.segment_bytes;
    const src = run.buf;
    let chunk = topic.chunks.length > 0 ? topic.chunks[topic.chunks.length - 1]! : null;
    let p = 0;
    for (let i = 0; i < sizes.length; ) {
      const size = sizes[i]!;
      // Roll: this record starts a new segment. A record larger than segment_bytes gets a
      // segment of its own rather than being refused (max_record_bytes bounds it).
      const roll = topic.projectedSize > 0 && topic.projectedSize + size > segmentBytes;
      if (roll) topic.projectedSize = 0;
      // The records from i on that stay in this segment go in with one copy, then are stamped.
      let n = 1;
      let bytes = size;
      while (i + n < sizes.length && topic.projectedSize + bytes + sizes[i + n]! <= segmentBytes) bytes += sizes[i + n++]!;
      if (roll || chunk === null) {
        chunk = this.newChunk(topic.nextOffset, roll || topic.segments.length === 0, bytes);
        topic.chunks.push(chunk);
      } else if (chunk.used + bytes > chunk.buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(chunk.buf.length * 2, chunk.used + bytes));
        chunk.buf.copy(grown, 0, 0, chunk.used);
        this.keep(chunk.buf);
        chunk.buf = grown;
      }
      src.copy(chunk.buf, chunk.used, p, p + bytes);
      for (let end = i + n; i < end; i++) {
        const at = chunk.used;
        chunk.used = at + sizes[i]!;
        stampRecord(chunk.buf, at, chunk.used, topic.nextOffset++, timestamp);
      }
      p += bytes;
      chunk.end = topic.nextOffset;
      topic.projectedSize += bytes;
    }
    this.dirty.add(topic);
    this.pendingBytes += run.bytes;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.schedule();
    return done;
  }

  private schedule(): void {
    if (this.flushing || this.immediate || this.waiters.length === 0) return;
    const interval = this.config.fsync_interval_ms;
    const due = this.lastFlushStart + interval - Date.now();
    if (this.config.fsync !== 'group' || due <= 0 || this.pendingBytes >= this.config.max_pending_bytes) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.immediate = setImmediate(() => {
        this.immediate = null;
        this.startFlush();
      });
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.startFlush();
      }, due);
    }
  }

  private startFlush(): void {
    if (this.flushing || this.waiters.length === 0) return;
    this.lastFlushStart = Date.now();
    this.flushing = this.flush().finally(() => {
      this.flushing = null;
      this.schedule();
    });
  }

  private async flush(): Promise<void> {
    const waiters = this.waiters;
    const topics = [...this.dirty];
    const bytes = this.pendingBytes;
    this.waiters = [];
    this.dirty = new Set();
    this.pendingBytes = 0;
    const sync = this.config.fsync !== 'never';
    try {
      const done: Array<{ topic: TopicState; hw: number; sizes: Map<number, number>; created: SegmentInfo[] }> = [];
      await Promise.all(
        topics.map(async (topic) => {
          const chunks = topic.chunks;
          topic.chunks = [];
          const created: SegmentInfo[] = [];
          const sizes = new Map<number, number>();
          let active = topic.segments.length > 0 ? topic.segments[topic.segments.length - 1]! : null;
          let pos = active ? active.size : 0;
          let dirtyHandle = false;
          for (const chunk of chunks) {
            if (chunk.newSegment) {
              if (topic.fh) {
                if (sync && dirtyHandle) await topic.fh.sync();
                await topic.fh.close();
                topic.fh = null;
              }
              const path = join(topic.dir, segmentName(chunk.base));
              topic.fh = await open(path, 'wx');
              active = { base: chunk.base, path, size: 0 };
              created.push(active);
              pos = 0;
            } else if (!topic.fh) {
              throw new Error(`no active segment for ${topic.name}`);
            }
            let off = 0;
            while (off < chunk.used) {
              const { bytesWritten } = await topic.fh.write(chunk.buf, off, chunk.used - off, pos + off);
              this.stats.writes++;
              off += bytesWritten;
            }
            pos += chunk.used;
            sizes.set(active!.base, pos);
            dirtyHandle = true;
          }
          if (sync) {
            await topic.fh!.sync();
            this.stats.fsyncs++;
            // A new segment's directory entry must be durable too, or a crash could lose the file.
            if (created.length > 0) await fsyncDir(topic.dir);
          }
          done.push({ topic, hw: chunks[chunks.length - 1]!.end, sizes, created });
          for (const chunk of chunks) this.keep(chunk.buf); // written: nothing refers to it any more
        }),
      );
      // Publish in one synchronous step, after the fsync: readers never see undurable bytes.
      let records = 0;
      for (const { topic, hw, sizes, created } of done) {
        topic.segments.push(...created);
        for (const seg of topic.segments) {
          const s = sizes.get(seg.base);
          if (s !== undefined) seg.size = s;
        }
        records += hw - topic.hw;
        topic.hw = hw;
      }
      this.stats.flushes++;
      this.stats.records += records;
      for (const w of waiters) w.resolve();
      this.onDurable(topics, bytes);
      for (const t of topics) t.notify();
    } catch (err) {
      // After a failed write or fsync the page cache state is unknown (fsyncgate): refuse further
      // writes instead of retrying; reopening the log re-runs recovery from what is on disk.
      this.failed = logError('LOG_ERR_IO', `event log write failed: ${(err as Error).message}`, err);
      for (const w of waiters) w.reject(this.failed);
      for (const w of this.waiters) w.reject(this.failed);
      this.waiters = [];
    }
  }

  private newChunk(base: number, newSegment: boolean, atLeast: number): PendingChunk {
    const i = this.spare.findIndex((b) => b.length >= atLeast);
    const buf = i >= 0 ? this.spare.splice(i, 1)[0]! : Buffer.allocUnsafe(Math.max(INITIAL_CHUNK_BYTES, atLeast));
    return { base, newSegment, buf, used: 0, end: base };
  }

  private keep(buf: Buffer): void {
    if (this.spare.length < SPARE_CHUNKS && buf.length <= SPARE_MAX_BYTES) this.spare.push(buf);
  }

  /** Write out everything pending now (no waiting for the group-commit timer). */
  async drain(): Promise<void> {
    while (this.flushing || this.waiters.length > 0) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      if (!this.flushing && !this.immediate) this.startFlush();
      if (this.flushing) await this.flushing;
      else await new Promise((r) => setImmediate(r));
    }
  }

  get error(): Error | null {
    return this.failed;
  }

  /** Bytes appended but not yet written. */
  get pending(): number {
    return this.pendingBytes;
  }
}
