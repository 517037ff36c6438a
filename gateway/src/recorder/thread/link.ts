/**
 * RecorderLink: the socket thread's side of the recorder thread. Recording a frame here is a
 * copy into a batch buffer; sealing (SHA-256 chain, canonical header) and appending to the event
 * log happen on the recorder thread (host.ts), so the thread that forwards bytes between client
 * and target spends its time forwarding. Batches are transferred, not cloned, at most every
 * `flush_ms` (or sooner when `flush_bytes` accumulated).
 *
 * Flow control is the EventSink's, seen from here: the proxies pause reading while the recorder
 * thread's sink is over its high-water mark, or while more than `high_water_bytes` handed over are
 * not yet processed there. A non-retriable log failure on the recorder thread latches `failure`
 * here (fail-closed gateways then refuse sessions).
 */
import { EventEmitter } from 'node:events';
import type { MessagePort } from 'node:worker_threads';
import type { ChainInput, ChainedRecord } from '@vigil/schemas';
import type { ChainWriter, EventSinkEvents, GatewayInfo, RecordSink } from '../sink.ts';
import { BatchWriter } from './wire.ts';
import type { FromRecorder, ToRecorder } from './protocol.ts';

export interface RecorderLinkOptions {
  /** Longest a recorded frame waits on this thread before it is handed over. */
  flush_ms: number;
  /** Hand over at once past this many buffered bytes. */
  flush_bytes: number;
  /** In-flight bytes (handed over, not yet processed) that put the proxies under pressure. */
  high_water_bytes: number;
  low_water_bytes: number;
}

export class RecorderError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RecorderError';
  }
}

export class RecorderLink extends EventEmitter<EventSinkEvents> implements RecordSink {
  private readonly writer = new BatchWriter();
  private nextSlot = 0;
  private nextId = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private remotePressure = false;
  private pressured = false;
  private pressuredAt = 0;
  private readonly drains = new Map<number, () => void>();
  private readonly replies = new Map<number, { resolve(r: ChainedRecord): void; reject(err: Error): void }>();
  failure: Error | undefined;
  /** Set once the recorder thread is gone: nothing recorded from then on can become durable. */
  private dead = false;
  /** Records in the batch buffer not yet handed over. */
  private unflushed = 0;
  /** Counters for /metrics and tests. `dropped`: records made after the recorder thread was gone. */
  readonly stats = { records: 0, bytes: 0, batches: 0, dropped: 0 };

  constructor(
    private readonly port: MessagePort,
    private readonly options: RecorderLinkOptions,
  ) {
    super();
    port.on('message', (m: FromRecorder) => this.onMessage(m));
    port.on('close', () => this.abandon());
  }

  /**
   * The recorder thread is gone (its port closed, or its worker exited): nothing more can become
   * durable through it. Waiting drains resolve, waiting and later sealed events reject, and the
   * failure is latched (fail-closed gateways refuse sessions), so nothing waits on it forever.
   */
  abandon(): void {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const resolve of this.drains.values()) resolve();
    this.drains.clear();
    for (const r of this.replies.values()) r.reject(new RecorderError('GW_ERR_RECORDER', 'the recorder thread went away'));
    this.replies.clear();
    this.onMessage({ op: 'fault', error: { code: 'GW_ERR_RECORDER', message: 'the recorder thread went away' } });
  }

  get underPressure(): boolean {
    return this.pressured;
  }

  pressuredForMs(): number {
    return this.pressured ? Date.now() - this.pressuredAt : 0;
  }

  openChain(sessionId: string, gateway: GatewayInfo): ChainWriter {
    const slot = this.nextSlot++;
    this.writer.open(slot, sessionId, gateway);
    this.schedule();
    return {
      frame: (direction, msgType, data, time) => {
        if (this.dead) {
          this.stats.dropped++;
          return;
        }
        this.writer.frame(slot, direction, msgType, time, data);
        this.unflushed++;
        this.stats.records++;
        this.stats.bytes += data.length;
        this.schedule();
      },
      event: (input: ChainInput) => {
        if (this.dead) {
          this.stats.dropped++;
          return;
        }
        this.writer.event(slot, input);
        this.unflushed++;
        this.stats.records++;
        this.schedule();
      },
      sealedEvent: (input: ChainInput) => {
        if (this.dead) {
          this.stats.dropped++;
          return Promise.reject(new RecorderError('GW_ERR_RECORDER', 'the recorder thread went away'));
        }
        const reply = this.nextId++;
        const sealed = new Promise<ChainedRecord>((resolve, reject) => this.replies.set(reply, { resolve, reject }));
        this.writer.event(slot, input, reply);
        this.unflushed++;
        this.stats.records++;
        this.flush(); // someone waits for it
        return sealed;
      },
      close: () => {
        this.writer.close(slot);
        this.schedule();
      },
    };
  }

  /** Everything recorded so far handed over and durable (or failed for good). */
  drain(): Promise<void> {
    if (this.dead) return Promise.resolve();
    this.flush();
    const id = this.nextId++;
    return new Promise<void>((resolve) => {
      this.drains.set(id, resolve);
      this.post({ op: 'drain', id });
    });
  }

  private schedule(): void {
    if (this.dead) return;
    if (this.writer.length >= this.options.flush_bytes) return this.flush();
    this.timer ??= setTimeout(this.flush, this.options.flush_ms);
  }

  private readonly flush = (): void => {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.writer.take();
    if (!batch) return;
    const records = this.unflushed;
    this.unflushed = 0;
    if (this.dead) {
      this.stats.dropped += records;
      return;
    }
    this.inFlight += batch.length;
    this.stats.batches++;
    this.post({ op: 'batch', id: this.nextId++, ...batch }, [batch.buffer]);
    this.updatePressure();
  };

  private post(m: ToRecorder, transfer: ArrayBuffer[] = []): void {
    this.port.postMessage(m, transfer);
  }

  private onMessage(m: FromRecorder): void {
    switch (m.op) {
      case 'processed':
        this.inFlight -= m.bytes;
        if (m.buffer) this.writer.recycle(m.buffer);
        break;
      case 'pressure':
        this.remotePressure = m.on;
        break;
      case 'sealed': {
        const r = this.replies.get(m.reply);
        this.replies.delete(m.reply);
        r?.resolve({ seq: m.seq, hash: m.hash, bytes: Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength) });
        return;
      }
      case 'sealed_error': {
        const r = this.replies.get(m.reply);
        this.replies.delete(m.reply);
        r?.reject(new RecorderError(m.error.code ?? 'GW_ERR_RECORDER', m.error.message));
        return;
      }
      case 'drained':
        this.drains.get(m.id)?.();
        this.drains.delete(m.id);
        return;
      case 'failure':
      case 'fault': {
        const first = this.failure === undefined;
        this.failure ??= new RecorderError(m.error.code ?? 'GW_ERR_RECORDER', m.error.message);
        if (first) this.emit('failure', this.failure);
        return;
      }
    }
    this.updatePressure();
  }

  private updatePressure(): void {
    const o = this.options;
    const local = this.pressured ? this.inFlight > o.low_water_bytes : this.inFlight >= o.high_water_bytes;
    const on = this.remotePressure || local;
    if (on === this.pressured) return;
    this.pressured = on;
    if (on) this.pressuredAt = Date.now();
    this.emit('pressure', on);
  }

  /** Stop listening (after drain); the port belongs to whoever created it. */
  close(): void {
    this.flush();
    this.port.removeAllListeners();
  }
}
