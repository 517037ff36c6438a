/**
 * In-memory state of one topic (single partition 0): its segments on disk and its offsets.
 * Shared by the writer (which appends and advances `hw`) and the readers (which never read past
 * `hw`, so a consumer in this process only ever sees records that are durable under the policy).
 */
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { listSegments, type SegmentInfo } from './segment.ts';
import { logError } from './errors.ts';

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,200}$/;

export function checkTopicName(topic: string): void {
  if (typeof topic !== 'string' || !TOPIC_NAME.test(topic) || topic === '.' || topic === '..') {
    throw logError('LOG_ERR_INVALID_TOPIC', `invalid topic name ${JSON.stringify(String(topic).slice(0, 210))}`);
  }
}

/** Records encoded but not yet written, destined for one segment. */
export interface PendingChunk {
  /** Offset of the chunk's first record. */
  base: number;
  /** True when this chunk starts a new segment (named by `base`). */
  newSegment: boolean;
  buf: Buffer;
  used: number;
  /** Offset after the chunk's last record. */
  end: number;
}

export class TopicState {
  readonly dir: string;
  /** Oldest first. The last one is active. `size` counts only flushed (durable) bytes. */
  segments: SegmentInfo[] = [];
  /** Next offset to assign (pending records included). */
  nextOffset = 0;
  /** High watermark: offset after the last durable record. Readers stop here. */
  hw = 0;
  /** Size the active segment will have once pending chunks are written. */
  projectedSize = 0;
  chunks: PendingChunk[] = [];
  /** Open handle on the active segment (writer only). */
  fh: FileHandle | null = null;
  /** Listeners woken when `hw` advances (in-process tail-follow). */
  readonly listeners = new Set<() => void>();

  constructor(
    readonly name: string,
    rootDir: string,
    /** Read-only view of a log another process writes: sizes come from the filesystem. */
    readonly readOnly: boolean,
  ) {
    this.dir = join(rootDir, name);
  }

  /** First offset still on disk. */
  get startOffset(): number {
    if (this.segments.length > 0) return this.segments[0]!.base;
    return this.readOnly ? 0 : this.hw;
  }

  /** Read-only mode: pick up segments and bytes the writer process appended since last time. */
  async refresh(): Promise<void> {
    if (!this.readOnly) return;
    // Keep the SegmentInfo objects readers hold (identity marks their position), update sizes.
    const known = new Map(this.segments.map((s) => [s.base, s]));
    this.segments = (await listSegments(this.dir)).map((s) => {
      const old = known.get(s.base);
      if (!old) return s;
      old.size = s.size;
      return old;
    });
  }

  notify(): void {
    for (const l of this.listeners) l();
  }
}
