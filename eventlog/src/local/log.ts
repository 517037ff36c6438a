/**
 * LocalEventLog: the embedded-mode event log and the gateway's spool. Directory layout:
 *
 *   <dir>/LOCK                                   single-writer lock (lock.ts)
 *   <dir>/<topic>/<20-digit base offset>.log     segments, partition 0 only (segment.ts, record.ts)
 *   <dir>/<topic>/consumers/<group>.offset       committed offsets (offsets.ts)
 *
 * Size bound and retention (also in docs/event-log.md):
 * - `used` = bytes of every segment of every topic + bytes accepted by send() but not yet written.
 *   A send is admitted only if used + its encoded size <= max_bytes.
 * - Retention runs while used > retain_bytes (default 75% of max_bytes): per topic, oldest first,
 *   the oldest segment is deleted if it is not the active (last) segment AND at least one group
 *   has committed on the topic AND every group that has committed on the topic has committed an
 *   offset >= the next segment's base offset (i.e. every one of its records was acknowledged).
 *   A topic no group ever committed on is never trimmed (audit data waits for its first reader);
 *   an abandoned group pins its topic until its offset file is removed.
 * - When a send does not fit: 'backpressure' queues it (FIFO, later sends queue behind it to keep
 *   order) and retries as retention frees space (on commits in this process, and every
 *   poll_interval_ms for consumers in other processes); 'fail_closed' runs retention once and
 *   rejects what still does not fit with LOG_ERR_FULL.
 */
import { mkdir, open, readdir } from 'node:fs/promises';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConsumerOptions, EventLog, LogRecord, Producer } from '../types.ts';
import { parseLocalEventLogConfig, type LocalEventLogConfig } from './config.ts';
import { LocalConsumer, type ConsumerHost, type LocalConsumerOptions } from './consumer.ts';
import { logError } from './errors.ts';
import { acquireLock, type DirLock } from './lock.ts';
import { fsyncDir, readAllCommitted, readCommitted } from './offsets.ts';
import { runOf, runSizes, type RecordRun } from '../run.ts';
import { listSegments, recoverSegment } from './segment.ts';
import { checkTopicName, TopicState } from './topic.ts';
import { GroupCommitWriter } from './writer.ts';

/** Sanity bound on a stored length prefix, independent of config (which may change between runs). */
const MAX_BODY_BYTES = 1024 * 1024 * 1024;

export interface RecoveryStats {
  /** Torn/invalid tail bytes truncated at open, total. */
  droppedBytes: number;
  topics: Array<{ topic: string; segment: string; droppedBytes: number; reason: string }>;
}

export interface LogUsage {
  usedBytes: number;
  maxBytes: number;
  retainBytes: number;
  /** Accepted by send() but not yet written. */
  pendingBytes: number;
  /** Sends waiting for space (backpressure). */
  blockedSends: number;
  full: boolean;
  /** Records rejected with LOG_ERR_FULL since open. */
  rejectedFull: number;
  topics: Record<string, { startOffset: string; endOffset: string; segments: number; bytes: number }>;
}

interface Blocked {
  topic: TopicState;
  run: RecordRun;
  sizes: number[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class LocalEventLog implements EventLog {
  readonly kind = 'local' as const;
  private readonly topics = new Map<string, TopicState>();
  private readonly writer: GroupCommitWriter;
  private readonly consumers = new Set<LocalConsumer>();
  private readonly groups = new Map<string, LocalConsumer>();
  private blocked: Blocked[] = [];
  private used = 0;
  private rejectedFull = 0;
  private closed = false;
  private retention: Promise<void> | null = null;
  private retentionAgain = false;
  private retentionTimer: NodeJS.Timeout | null = null;
  private lastRetention = 0;
  readonly recovery: RecoveryStats = { droppedBytes: 0, topics: [] };

  private constructor(
    readonly config: LocalEventLogConfig,
    private readonly lock: DirLock | null,
  ) {
    this.writer = new GroupCommitWriter(config, () => this.afterFlush());
  }

  /** Validate config, take the lock, recover every topic's last segment. */
  static async open(input: unknown): Promise<LocalEventLog> {
    const config = parseLocalEventLogConfig(input);
    if (!config.read_only) await mkdir(config.dir, { recursive: true });
    const lock = config.read_only ? null : await acquireLock(config.dir);
    const log = new LocalEventLog(config, lock);
    try {
      for (const entry of await readdir(config.dir, { withFileTypes: true })) {
        if (entry.isDirectory() && /^[A-Za-z0-9._-]{1,200}$/.test(entry.name)) await log.loadTopic(entry.name);
      }
    } catch (err) {
      await log.closeHandles();
      await lock?.release();
      throw err;
    }
    return log;
  }

  private async loadTopic(name: string): Promise<TopicState> {
    const t = new TopicState(name, this.config.dir, this.config.read_only);
    t.segments = await listSegments(t.dir);
    const last = t.segments[t.segments.length - 1];
    if (last && !this.config.read_only) {
      const rec = await recoverSegment(last, MAX_BODY_BYTES);
      t.fh = await open(last.path, 'r+');
      if (rec.droppedBytes > 0) {
        // A crash mid-group-commit leaves a torn tail that was never acknowledged: drop it.
        await t.fh.truncate(rec.validBytes);
        await t.fh.sync();
        this.recovery.droppedBytes += rec.droppedBytes;
        this.recovery.topics.push({ topic: name, segment: last.path, droppedBytes: rec.droppedBytes, reason: rec.reason ?? '' });
      }
      last.size = rec.validBytes;
      t.nextOffset = t.hw = rec.nextOffset;
      t.projectedSize = last.size;
    }
    for (const s of t.segments) this.used += s.size;
    this.topics.set(name, t);
    return t;
  }

  async ensureTopics(topics: string[]): Promise<void> {
    this.assertOpen();
    for (const name of topics) {
      checkTopicName(name);
      if (this.topics.has(name)) continue;
      if (this.config.read_only) {
        this.topics.set(name, new TopicState(name, this.config.dir, true));
        continue;
      }
      await mkdir(join(this.config.dir, name), { recursive: true });
      await fsyncDir(this.config.dir);
      if (!this.topics.has(name)) this.topics.set(name, new TopicState(name, this.config.dir, false));
    }
  }

  producer(): Producer {
    if (this.config.read_only) throw logError('LOG_ERR_READ_ONLY', `log ${this.config.dir} is read-only`);
    let closed = false;
    return {
      send: (topic, records) =>
        closed ? Promise.reject(logError('LOG_ERR_CLOSED', 'producer closed')) : this.send(topic, records),
      sendRun: (topic, run) =>
        closed ? Promise.reject(logError('LOG_ERR_CLOSED', 'producer closed')) : this.sendRun(topic, run),
      close: async () => {
        closed = true;
        if (!this.closed) await this.writer.drain();
      },
    };
  }

  consumer(options: ConsumerOptions | LocalConsumerOptions): LocalConsumer {
    this.assertOpen();
    const host: ConsumerHost = {
      topic: async (name) => {
        await this.ensureTopics([name]);
        const t = this.topics.get(name)!;
        await t.refresh();
        return t;
      },
      maxBody: MAX_BODY_BYTES,
      pollIntervalMs: this.config.poll_interval_ms,
      committed: () => this.scheduleRetention(),
      claimGroup: (groupId, c) => {
        const holder = this.groups.get(groupId);
        if (holder && holder !== c) throw logError('LOG_ERR_GROUP_BUSY', `consumer group ${groupId} already has an active member`);
        this.groups.set(groupId, c);
        this.consumers.add(c);
      },
      releaseGroup: (groupId, c) => {
        if (this.groups.get(groupId) === c) this.groups.delete(groupId);
        this.consumers.delete(c);
      },
    };
    return new LocalConsumer(host, options);
  }

  /** Append; resolves once durable per the fsync policy (see writer.ts). */
  send(topicName: string, records: LogRecord[]): Promise<void> {
    try {
      const topic = this.writableTopic(topicName);
      if (!Array.isArray(records)) throw logError('LOG_ERR_INVALID_RECORD', 'records must be an array');
      if (records.length === 0) return Promise.resolve();
      return this.admit(topic, runOf(records));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Append a record run (run.ts): the same as send() without an object per record. */
  sendRun(topicName: string, run: RecordRun): Promise<void> {
    try {
      const topic = this.writableTopic(topicName);
      if (run?.count === 0 && run.bytes === 0) return Promise.resolve();
      return this.admit(topic, run);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private writableTopic(topicName: string): TopicState {
    this.assertOpen();
    const err = this.writer.error;
    if (err) throw err;
    const topic = this.topics.get(topicName);
    if (!topic) {
      checkTopicName(topicName);
      throw logError('LOG_ERR_UNKNOWN_TOPIC', `topic ${topicName} does not exist (ensureTopics first)`);
    }
    return topic;
  }

  /** Admit a run now if it fits and nothing waits before it, else queue it (the full policy). */
  private admit(topic: TopicState, run: RecordRun): Promise<void> {
    const sizes = runSizes(run, this.config.max_record_bytes);
    const total = run.bytes;
    if (total > this.config.max_bytes - this.config.segment_bytes) {
      throw logError('LOG_ERR_TOO_LARGE', `a send of ${total} bytes can never fit under max_bytes; split it`);
    }
    if (this.blocked.length === 0 && this.used + total <= this.config.max_bytes) {
      this.used += total;
      return this.writer.append(topic, run, sizes);
    }
    return new Promise<void>((resolve, reject) => {
      this.blocked.push({ topic, run, sizes, resolve, reject });
      this.scheduleRetention(true);
    });
  }

  /** Admit queued sends that now fit, in order. */
  private admitBlocked(afterRetention: boolean): void {
    while (this.blocked.length > 0) {
      const b = this.blocked[0]!;
      if (this.used + b.run.bytes > this.config.max_bytes) break;
      this.blocked.shift();
      this.used += b.run.bytes;
      this.writer.append(b.topic, b.run, b.sizes).then(b.resolve, b.reject);
    }
    if (this.blocked.length > 0 && afterRetention && this.config.when_full === 'fail_closed') {
      const rejected = this.blocked;
      this.blocked = [];
      for (const b of rejected) {
        this.rejectedFull += b.run.count;
        b.reject(logError('LOG_ERR_FULL', `event log full (${this.used} of ${this.config.max_bytes} bytes used)`));
      }
    }
  }

  private afterFlush(): void {
    if (this.used > this.config.retain_bytes) this.scheduleRetention();
  }

  /**
   * Run retention soon: at once if `urgent` (a send just blocked), else at most once per
   * poll_interval_ms. Passes never overlap and always start from a timer (never recursively).
   */
  private scheduleRetention(urgent = false): void {
    if (this.closed || this.config.read_only) return;
    if (this.retention) {
      this.retentionAgain = true;
      return;
    }
    if (this.retentionTimer) {
      if (!urgent) return;
      clearTimeout(this.retentionTimer);
    }
    const wait = urgent ? 0 : Math.max(0, this.lastRetention + this.config.poll_interval_ms - Date.now());
    this.retentionTimer = setTimeout(() => this.runRetention(), wait);
  }

  private runRetention(): void {
    this.retentionTimer = null;
    this.lastRetention = Date.now();
    this.retention = this.retain()
      .catch((err: unknown) => {
        process.stderr.write(`vigil eventlog retention failed: ${(err as Error).message}\n`);
      })
      .finally(() => {
        this.retention = null;
        if (this.closed) return;
        this.admitBlocked(true);
        const again = this.retentionAgain;
        this.retentionAgain = false;
        // Sends still blocked wait on consumers, possibly in another process: poll.
        if (this.blocked.length > 0) this.retentionTimer = setTimeout(() => this.runRetention(), this.config.poll_interval_ms);
        else if (again) this.scheduleRetention();
      });
  }

  /** One retention pass (rule in the header comment). */
  private async retain(): Promise<void> {
    for (const topic of this.topics.values()) {
      if (this.used <= this.config.retain_bytes) return;
      if (topic.segments.length < 2) continue;
      const committed = await readAllCommitted(topic.dir);
      if (committed.size === 0) continue;
      const min = Math.min(...committed.values());
      while (topic.segments.length > 1 && this.used > this.config.retain_bytes) {
        const [oldest, next] = [topic.segments[0]!, topic.segments[1]!];
        if (next.base > min) break;
        await unlink(oldest.path).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
        topic.segments.shift();
        this.used -= oldest.size;
      }
    }
  }

  /** A group's committed offset on a topic (the next offset it will read), if it ever committed. */
  async committedOffset(groupId: string, topic: string): Promise<string | undefined> {
    checkTopicName(topic);
    const o = await readCommitted(join(this.config.dir, topic), groupId);
    return o === undefined ? undefined : String(o);
  }

  /** True when a new session should be refused: sends are blocked, or a max-size record would not fit. */
  isFull(): boolean {
    return this.blocked.length > 0 || this.used + this.config.max_record_bytes > this.config.max_bytes;
  }

  usage(): LogUsage {
    const topics: LogUsage['topics'] = {};
    for (const [name, t] of this.topics) {
      topics[name] = {
        startOffset: String(t.startOffset),
        endOffset: String(t.readOnly ? t.nextOffset : t.hw),
        segments: t.segments.length,
        bytes: t.segments.reduce((a, s) => a + s.size, 0),
      };
    }
    return {
      usedBytes: this.used,
      maxBytes: this.config.max_bytes,
      retainBytes: this.config.retain_bytes,
      pendingBytes: this.writer.pending,
      blockedSends: this.blocked.length,
      full: this.isFull(),
      rejectedFull: this.rejectedFull,
      topics,
    };
  }

  /** Writer counters (group commits, write() calls, fsyncs, records). */
  get writerStats(): Readonly<GroupCommitWriter['stats']> {
    return this.writer.stats;
  }

  /** Stop consumers (after their in-flight batch), flush pending writes, release the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const c of [...this.consumers]) await c.stop();
    this.closed = true;
    if (this.retentionTimer) clearTimeout(this.retentionTimer);
    const blocked = this.blocked;
    this.blocked = [];
    for (const b of blocked) b.reject(logError('LOG_ERR_CLOSED', 'event log closed while the send waited for space'));
    await this.writer.drain();
    if (this.retention) await this.retention;
    await this.closeHandles();
    await this.lock?.release();
  }

  private async closeHandles(): Promise<void> {
    for (const t of this.topics.values()) {
      const fh = t.fh;
      t.fh = null;
      if (fh) await fh.close().catch(() => undefined);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw logError('LOG_ERR_CLOSED', 'event log closed');
  }
}
