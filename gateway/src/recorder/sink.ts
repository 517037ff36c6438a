/**
 * EventSink: the gateway process's single path into the event log.
 *
 * Recorders append sealed records synchronously (no promise per frame); the sink hands everything
 * accumulated during one turn of the event loop to the log in one `send`, so the log's own group
 * commit sees large batches. Records accumulate as a record run (@vigil/eventlog/run): natively
 * sealed frames are sealed straight into it, in place in their log records, and the local log
 * takes the run as it is (other producers get its records back out). Memory is bounded: past
 * `high_water_bytes` of records not yet durable the sink reports pressure and the proxies stop
 * reading from their sockets (backpressure — audit data is never dropped); below
 * `low_water_bytes` they resume.
 *
 * A failed send is retried while the error is retriable; a non-retriable failure latches
 * `failure`, which makes the gateway refuse new sessions when fail-closed is configured.
 */
import { EventEmitter } from 'node:events';
import { SessionChain, type ChainInput, type ChainedRecord, type Direction } from '@vigil/schemas';
import { nativeSealer, type NativeChains } from '@vigil/schemas/native';
import type { Producer } from '@vigil/eventlog/types';
import { RecordRunBuilder, recordsOf, type RecordRun } from '@vigil/eventlog/run';

/** The gateway identity stamped on every event of a chain. */
export interface GatewayInfo {
  gateway_id: string;
  gateway_version: string;
}

/** One session's chain as the recorder writes it: sealed here, or in the recorder thread. */
export interface ChainWriter {
  /**
   * `data` is copied (or sealed) before this returns, so the caller may reuse its buffer (the pg
   * relay's upstream reads do); `time` is µs since epoch (taken when the message crossed).
   */
  frame(direction: Direction, msgType: string | undefined, data: Uint8Array, time: number): void;
  event(input: ChainInput): void;
  /** Like `event`, and resolves with the sealed record (its bytes are mirrored elsewhere, e.g. approvals). */
  sealedEvent(input: ChainInput): Promise<ChainedRecord>;
  /** No more events will come for this chain (frees its state). */
  close(): void;
}

/**
 * What the gateway records through: where chains are sealed and made durable, plus the flow
 * control the proxies obey. Implemented by EventSink (sealed on this thread) and by RecorderLink
 * (gateway/src/recorder/thread: sealed and appended on the recorder thread).
 */
export interface RecordSink extends EventEmitter<EventSinkEvents> {
  readonly underPressure: boolean;
  readonly failure: Error | undefined;
  pressuredForMs(): number;
  drain(): Promise<void>;
  openChain(sessionId: string, gateway: GatewayInfo): ChainWriter;
}

/** Free room asked of the run before each native batch call (it seals as many records as fit). */
const BATCH_ROOM = 16 * 1024;

export interface EventSinkOptions {
  topic: string;
  high_water_bytes: number;
  low_water_bytes: number;
  /** Delay between retries of a retriable send failure. */
  retry_backoff_ms: number;
}

export interface EventSinkEvents {
  pressure: [on: boolean];
  failure: [error: Error];
}

export class EventSink extends EventEmitter<EventSinkEvents> implements RecordSink {
  /** Records accumulating for the next send. */
  private readonly run = new RecordRunBuilder();
  /** appendFrames' results from the native batch sealer (seal_frame.c sealFrames). */
  private readonly io = new Float64Array(4);
  private scheduled = false;
  private pending = 0;
  private pressured = false;
  private pressuredAt = 0;
  /** The one send in flight. One at a time keeps per-session order across retries and failures. */
  private sending: Promise<void> | undefined;
  /** Set once a non-retriable error made events impossible to persist. */
  failure: Error | undefined;
  /** Counters for /metrics. `bytes`: event bytes; `lost_records`: records of sends that failed for good. */
  readonly stats = { records: 0, bytes: 0, sends: 0, send_errors: 0, lost_records: 0 };

  constructor(
    private readonly producer: Producer,
    private readonly options: EventSinkOptions,
  ) {
    super();
  }

  /** Bytes appended but not yet durable. */
  get pendingBytes(): number {
    return this.pending;
  }

  get underPressure(): boolean {
    return this.pressured;
  }

  /** How long the current pressure episode has lasted (0 when not under pressure). */
  pressuredForMs(): number {
    return this.pressured ? Date.now() - this.pressuredAt : 0;
  }

  /** A chain sealed on this thread and appended here. */
  openChain(sessionId: string, gateway: GatewayInfo): ChainWriter {
    const chain = new SessionChain(sessionId, gateway);
    const key = Buffer.from(sessionId);
    return {
      frame: (direction, msgType, data, time) => this.appendFrame(sessionId, key, chain, direction, msgType, data, time),
      event: (input) => this.append(sessionId, chain.next(input).bytes, { type: input.type }),
      sealedEvent: async (input) => {
        const record = chain.next(input);
        this.append(sessionId, record.bytes, { type: input.type });
        return record;
      },
      close: () => {},
    };
  }

  /** Append a sealed event (copied). */
  append(key: string, value: Buffer, headers?: Record<string, string>): void {
    this.appended(this.run.add(headers ? { key, value, headers } : { key, value }), value.length);
  }

  /**
   * Seal `chain`'s next frame and append it (`key` is `sessionId`'s UTF-8 bytes). A native chain
   * seals in place, in its log record: no buffer per frame.
   */
  appendFrame(sessionId: string, key: Buffer, chain: SessionChain, direction: Direction, msgType: string | undefined, data: Uint8Array, time: number): void {
    if (!chain.native) return this.append(sessionId, chain.frame(direction, msgType, data, time).bytes);
    const run = this.run;
    const at = run.beginValue(key);
    let recordBytes: number;
    let eventBytes: number;
    try {
      let end = chain.sealFrameInto(run.buf, at, direction, msgType, data, time);
      if (end < 0) {
        run.growValue(at, -end);
        end = chain.sealFrameInto(run.buf, at, direction, msgType, data, time);
      }
      eventBytes = end - at;
      recordBytes = run.endValue(end);
    } catch (err) {
      // Nothing was sealed (the chain is as before): the run stays whole for the records around it.
      run.abortValue();
      throw err;
    }
    this.appended(recordBytes, eventBytes);
  }

  /**
   * The recorder thread's batch path: seal the consecutive frames of a socket-thread batch
   * (recorder/thread/wire.ts) from `pos`, of the chains in `chains` (the natively sealed ones, by
   * slot), straight into the run with the native batch sealer — one call for many frames.
   * Returns where it stopped: the first op it leaves to the caller's per-op path (not a frame, a
   * chain not in `chains`, a msg_type to escape; seal_frame.c lists them). Without the native
   * sealer it seals nothing and returns `pos`.
   */
  appendFrames(batch: Uint8Array, pos: number, end: number, chains: NativeChains): number {
    const addon = nativeSealer.addon;
    if (!addon) return pos;
    const run = this.run;
    const io = this.io;
    let room = BATCH_ROOM;
    for (;;) {
      const at = run.reserveRecords(room);
      io[0] = at;
      io[1] = 0;
      io[3] = 0;
      try {
        pos = addon.sealFrames(batch, pos, end, run.buf, at, chains, io);
      } finally {
        // Records sealed before a failure are in the run and their chains have moved on: they
        // are kept (the chains stay whole in the log) before the error goes on.
        const count = io[1]!;
        if (count > 0) {
          run.recordsWritten(io[0]!, count);
          this.appended(io[0]! - at, io[2]!, count);
        }
      }
      if (io[3] === 0) return pos;
      room = io[3]!; // the next record did not fit: room for it, then on
    }
  }

  private appended(recordBytes: number, eventBytes: number, records = 1): void {
    this.pending += recordBytes;
    this.stats.records += records;
    this.stats.bytes += eventBytes;
    if (!this.pressured && this.pending >= this.options.high_water_bytes) this.setPressure(true);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.sending) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /**
   * Send everything accumulated as one batch. While a send (with its retries) is in flight, new
   * records accumulate and go in the next batch, after it — so a batch retried after a transient
   * error can never be overtaken by a later one (Kafka without a spool would otherwise reorder).
   */
  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.sending) return;
    const run = this.run.take();
    if (!run) return;
    this.sending = this.sendWithRetry(run)
      .then(
        () => this.release(run.bytes),
        (err: Error) => {
          // Non-retriable: these records cannot be made durable. Count them as lost and release
          // their bytes (so pressure cannot latch forever); latch the failure, which makes the
          // gateway end live sessions and refuse new ones when fail-closed.
          this.stats.lost_records += run.count;
          this.release(run.bytes);
          const first = this.failure === undefined;
          this.failure ??= err;
          if (first) this.emit('failure', err);
        },
      )
      .finally(() => {
        // Sent (or lost for good): the log keeps its own copy, so the run's memory takes new records.
        this.run.recycle(run);
        this.sending = undefined;
        if (this.run.bytes > 0) this.schedule();
      });
  };

  private release(bytes: number): void {
    this.pending -= bytes;
    if (this.pressured && this.pending <= this.options.low_water_bytes) this.setPressure(false);
  }

  private async sendWithRetry(run: RecordRun): Promise<void> {
    // The local log takes the run as it is; any other producer gets its records (views into it).
    const records = this.producer.sendRun ? undefined : recordsOf(run);
    for (;;) {
      try {
        this.stats.sends++;
        await (records ? this.producer.send(this.options.topic, records) : this.producer.sendRun!(this.options.topic, run));
        return;
      } catch (err) {
        this.stats.send_errors++;
        if (!(err as { retriable?: boolean }).retriable) throw err;
        await new Promise((r) => setTimeout(r, this.options.retry_backoff_ms));
      }
    }
  }

  private setPressure(on: boolean): void {
    this.pressured = on;
    if (on) this.pressuredAt = Date.now();
    this.emit('pressure', on);
  }

  /** Wait until everything appended so far is durable (or failed). */
  async drain(): Promise<void> {
    for (;;) {
      if (this.sending) await this.sending;
      else if (this.run.bytes > 0) this.flush();
      else return;
    }
  }
}
