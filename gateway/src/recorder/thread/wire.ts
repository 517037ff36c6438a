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

/** Appends ops to a growable buffer; `take()` hands the filled buffer over and starts a new one. */
export class BatchWriter {
  private buf: Buffer;
  private pos = 0;
  private events: WireEvent[] = [];

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
    this.buf = fresh(Math.max(this.initialBytes, Math.min(this.pos, 4 * 1024 * 1024)));
    this.pos = 0;
    this.events = [];
    return batch;
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

/** Read a batch's ops in order. Frame data are views into the batch (the sealed record copies them). */
export function* readBatch(batch: WireBatch): Generator<WireOp> {
  const b = Buffer.from(batch.buffer, 0, batch.length);
  let p = 0;
  while (p < b.length) {
    const op = b[p]!;
    const slot = b.readUInt32LE(p + 1);
    switch (op) {
      case OP_OPEN: {
        const len = b.readUInt16LE(p + 5);
        const id = JSON.parse(b.toString('utf8', p + 7, p + 7 + len)) as { session_id: string; gateway_id: string; gateway_version: string };
        p += 7 + len;
        yield { op, slot, sessionId: id.session_id, gateway: { gateway_id: id.gateway_id, gateway_version: id.gateway_version } };
        break;
      }
      case OP_FRAME: {
        const direction: Direction = b[p + 5] === 0 ? 'c2s' : 's2c';
        const typeLen = b[p + 6]!;
        p += 7;
        let msgType: string | undefined;
        if (typeLen !== NO_TYPE) {
          msgType = b.toString('utf8', p, p + typeLen);
          p += typeLen;
        }
        const time = b.readDoubleLE(p);
        const len = b.readUInt32LE(p + 8);
        const data = b.subarray(p + 12, p + 12 + len);
        p += 12 + len;
        yield { op, slot, direction, msgType, time, data };
        break;
      }
      case OP_EVENT: {
        const e = batch.events[b.readUInt32LE(p + 5)]!;
        p += 9;
        yield e.reply === undefined ? { op, slot, input: e.input } : { op, slot, input: e.input, reply: e.reply };
        break;
      }
      case OP_CLOSE:
        p += 5;
        yield { op, slot };
        break;
      default:
        throw new Error(`recorder batch: unknown op ${op} at ${p}`);
    }
  }
}
