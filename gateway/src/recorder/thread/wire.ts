/**
 * The batch format between the socket thread and the recorder thread (pure: bytes in, ops out).
 *
 * The socket thread appends ops to one buffer and transfers it (no copy, no structured clone per
 * frame) every flush; the recorder thread reads them back in order. Per-session order is the
 * buffer's order, so the chain's `seq` assigned on the recorder thread is the order in which the
 * messages crossed the gateway.
 *
 *   op      layout after the op byte
 *   OPEN    u32 slot, u16 length, UTF-8 JSON {session_id, gateway_id, gateway_version}
 *   FRAME   u32 slot, u8 direction (0 c2s, 1 s2c), u8 msg_type length (255 = none), msg_type
 *           (UTF-8), f64 time (µs since epoch), u32 length, data
 *   EVENT   u32 slot, u32 index into the batch's `events` (structured-cloned inputs: rare, and
 *           they may carry any JSON value)
 *   CLOSE   u32 slot
 */
import type { ChainInput, Direction } from '@vigil/schemas';
import type { GatewayInfo } from '../sink.ts';

export const OP_OPEN = 1;
export const OP_FRAME = 2;
export const OP_EVENT = 3;
export const OP_CLOSE = 4;
const NO_TYPE = 255;

export type WireOp =
  | { op: typeof OP_OPEN; slot: number; sessionId: string; gateway: GatewayInfo }
  | { op: typeof OP_FRAME; slot: number; direction: Direction; msgType: string | undefined; time: number; data: Buffer }
  | { op: typeof OP_EVENT; slot: number; input: ChainInput; reply?: number }
  | { op: typeof OP_CLOSE; slot: number };

/** A non-frame event; `reply` asks the recorder thread to send the sealed record back. */
export interface WireEvent {
  input: ChainInput;
  reply?: number;
}

/** One transferred batch. */
export interface WireBatch {
  buffer: ArrayBuffer;
  length: number;
  events: WireEvent[];
}

/** Buffers returned by the recorder thread, kept for reuse (more would only be idle memory). */
const SPARE_MAX = 4;

/**
 * Appends ops to a growable buffer; `take()` hands the filled buffer over and starts the next one
 * in a recycled buffer when one came back (`recycle`), else a fresh one.
 */
export class BatchWriter {
  private buf: Buffer;
  private pos = 0;
  private events: WireEvent[] = [];
  private readonly spare: ArrayBuffer[] = [];

  constructor(private readonly initialBytes = 64 * 1024) {
    this.buf = fresh(initialBytes);
  }

  get length(): number {
    return this.pos;
  }

  open(slot: number, sessionId: string, gateway: GatewayInfo): void {
    const json = JSON.stringify({ session_id: sessionId, gateway_id: gateway.gateway_id, gateway_version: gateway.gateway_version });
    const len = Buffer.byteLength(json);
    if (len > 0xffff) throw new Error('session identity too long for the recorder batch');
    this.reserve(7 + len);
    const b = this.buf;
    b[this.pos] = OP_OPEN;
    b.writeUInt32LE(slot, this.pos + 1);
    b.writeUInt16LE(len, this.pos + 5);
    b.write(json, this.pos + 7, len, 'utf8');
    this.pos += 7 + len;
  }

  frame(slot: number, direction: Direction, msgType: string | undefined, time: number, data: Uint8Array): void {
    // msg_type is one letter for PostgreSQL; SSH uses short names; a hostile type byte may map to
    // a non-ASCII letter, hence UTF-8 with a byte length.
    const typeLen = msgType === undefined ? 0 : Buffer.byteLength(msgType);
    if (typeLen >= NO_TYPE) throw new Error('msg_type too long for the recorder batch');
    this.reserve(19 + typeLen + data.length);
    const b = this.buf;
    let p = this.pos;
    b[p] = OP_FRAME;
    b.writeUInt32LE(slot, p + 1);
    b[p + 5] = direction === 'c2s' ? 0 : 1;
    b[p + 6] = msgType === undefined ? NO_TYPE : typeLen;
    p += 7;
    if (typeLen > 0) p += b.write(msgType!, p, typeLen, 'utf8');
    b.writeDoubleLE(time, p);
    b.writeUInt32LE(data.length, p + 8);
    b.set(data, p + 12);
    this.pos = p + 12 + data.length;
  }

  event(slot: number, input: ChainInput, reply?: number): void {
    this.reserve(9);
    const b = this.buf;
    b[this.pos] = OP_EVENT;
    b.writeUInt32LE(slot, this.pos + 1);
    b.writeUInt32LE(this.events.length, this.pos + 5);
    this.pos += 9;
    this.events.push(reply === undefined ? { input } : { input, reply });
  }

  close(slot: number): void {
    this.reserve(5);
    this.buf[this.pos] = OP_CLOSE;
    this.buf.writeUInt32LE(slot, this.pos + 1);
    this.pos += 5;
  }

  /** The filled batch (its buffer is to be transferred), or undefined when empty. */
  take(): WireBatch | undefined {
    if (this.pos === 0) return undefined;
    const batch = { buffer: this.buf.buffer as ArrayBuffer, length: this.pos, events: this.events };
    const spare = this.spare.pop();
    this.buf = spare ? Buffer.from(spare) : fresh(Math.max(this.initialBytes, Math.min(this.pos, 4 * 1024 * 1024)));
    this.pos = 0;
    this.events = [];
    return batch;
  }

  /** A taken batch's buffer, back from the recorder thread: the next `take()` reuses it. */
  recycle(buffer: ArrayBuffer): void {
    // Oversized ones (a burst grew the batch) are let go, so memory shrinks back after it.
    if (this.spare.length < SPARE_MAX && buffer.byteLength <= 4 * this.initialBytes) this.spare.push(buffer);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = fresh(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/** A buffer with its own ArrayBuffer (not a pool slab), so it can be transferred. */
function fresh(size: number): Buffer {
  return Buffer.from(new ArrayBuffer(size));
}

/** One-letter ASCII msg_types (all of PostgreSQL's) decoded without a string per frame. */
const ONE_BYTE_TYPE = Array.from({ length: 128 }, (_, i) => String.fromCharCode(i));

/**
 * Reads a batch's ops in order without an object per op (the recorder thread reads every frame
 * through this): `next()` advances and sets the fields of the op it reached. Frame `data` is a view
 * into the batch (the sealed record copies it).
 */
export class BatchReader {
  op = 0;
  slot = 0;
  direction: Direction = 'c2s';
  msgType: string | undefined;
  time = 0;
  data: Buffer = EMPTY;
  /** OP_OPEN */
  sessionId = '';
  gateway: GatewayInfo = { gateway_id: '', gateway_version: '' };
  /** OP_EVENT */
  event: WireEvent | undefined;
  private p = 0;
  /** The batch's ops (bytes 0 to `length`). */
  readonly b: Buffer;

  constructor(private readonly batch: WireBatch) {
    this.b = Buffer.from(batch.buffer, 0, batch.length);
  }

  /** Where the next op starts. */
  get position(): number {
    return this.p;
  }

  /**
   * Continue at `p`: the start of an op, after others read elsewhere (the native batch sealer
   * takes runs of frames and says where it stopped).
   */
  seek(p: number): void {
    if (!Number.isInteger(p) || p < this.p || p > this.b.length) throw new Error(`recorder batch: cannot seek to ${p}`);
    this.p = p;
  }

  next(): boolean {
    const b = this.b;
    let p = this.p;
    if (p >= b.length) return false;
    const op = b[p]!;
    // Every op's fixed part, then its lengths, are checked before anything past them is read
    // (subarray and toString would clamp a cut-short op into a shorter one instead of refusing it).
    if (p + (FIXED[op] ?? 1) > b.length) throw cutShort(op, p);
    this.op = op;
    this.slot = b.readUInt32LE(p + 1);
    switch (op) {
      case OP_FRAME: {
        const typeLen = b[p + 6]!;
        const dataAt = p + 7 + (typeLen === NO_TYPE ? 0 : typeLen) + 12;
        if (dataAt > b.length || dataAt + b.readUInt32LE(dataAt - 4) > b.length) throw cutShort(op, p);
        this.direction = b[p + 5] === 0 ? 'c2s' : 's2c';
        p += 7;
        if (typeLen === NO_TYPE) this.msgType = undefined;
        else {
          this.msgType = typeLen === 1 && b[p]! < 128 ? ONE_BYTE_TYPE[b[p]!] : b.toString('utf8', p, p + typeLen);
          p += typeLen;
        }
        this.time = b.readDoubleLE(p);
        const len = b.readUInt32LE(p + 8);
        this.data = b.subarray(p + 12, p + 12 + len);
        this.p = p + 12 + len;
        return true;
      }
      case OP_OPEN: {
        const len = b.readUInt16LE(p + 5);
        if (p + 7 + len > b.length) throw cutShort(op, p);
        const id = JSON.parse(b.toString('utf8', p + 7, p + 7 + len)) as { session_id: string; gateway_id: string; gateway_version: string };
        this.sessionId = id.session_id;
        this.gateway = { gateway_id: id.gateway_id, gateway_version: id.gateway_version };
        this.p = p + 7 + len;
        return true;
      }
      case OP_EVENT: {
        const event = this.batch.events[b.readUInt32LE(p + 5)];
        if (!event) throw new Error(`recorder batch: event op at ${p} refers to no event`);
        this.event = event;
        this.p = p + 9;
        return true;
      }
      case OP_CLOSE:
        this.p = p + 5;
        return true;
      default:
        throw new Error(`recorder batch: unknown op ${op} at ${p}`);
    }
  }
}

const EMPTY = Buffer.alloc(0);

/** Bytes of each op before its variable part (an unknown op: 1, so the reader reports it as unknown). */
const FIXED: Record<number, number> = { [OP_OPEN]: 7, [OP_FRAME]: 7, [OP_EVENT]: 9, [OP_CLOSE]: 5 };

function cutShort(op: number, at: number): Error {
  return new Error(`recorder batch: op ${op} at ${at} cut short`);
}

/** Read a batch's ops in order, one object each (tests and tools; the recorder thread uses BatchReader). */
export function* readBatch(batch: WireBatch): Generator<WireOp> {
  const r = new BatchReader(batch);
  while (r.next()) {
    switch (r.op) {
      case OP_OPEN:
        yield { op: OP_OPEN, slot: r.slot, sessionId: r.sessionId, gateway: r.gateway };
        break;
      case OP_FRAME:
        yield { op: OP_FRAME, slot: r.slot, direction: r.direction, msgType: r.msgType, time: r.time, data: r.data };
        break;
      case OP_EVENT: {
        const e = r.event!;
        yield e.reply === undefined ? { op: OP_EVENT, slot: r.slot, input: e.input } : { op: OP_EVENT, slot: r.slot, input: e.input, reply: e.reply };
        break;
      }
      case OP_CLOSE:
        yield { op: OP_CLOSE, slot: r.slot };
        break;
    }
  }
}
