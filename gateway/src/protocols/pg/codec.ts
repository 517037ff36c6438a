/**
 * PostgreSQL framing, pure: bytes in, messages out, and builders for what the gateway itself sends.
 *
 * `MessageReader` reassembles typed messages (1 type byte + int32 length that counts itself) with
 * `subarray` views into the incoming chunk; bytes are concatenated only when a message spans chunk
 * boundaries. The length field is checked against the limit before anything is buffered, because
 * the gateway faces untrusted input (a 2^31-1 length must cost nothing).
 *
 * `StartupReader` handles the startup phase, whose packets have no type byte (int32 length, int32
 * code): StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.
 */
import { ErrorField, StartupCode } from './messages.ts';
import type { GatewayErrorCode } from '../../errors.ts';

const HEADER = 5;

export interface FrameError {
  code: GatewayErrorCode;
  message: string;
  /** Offset in the chunk passed to push() where the offending message starts (0 if it began earlier). */
  offset: number;
}

export type MessageHandler = (type: number, message: Buffer) => void;

export interface MessageReaderOptions {
  maxFrameBytes: number;
  /** Reject type bytes for which this returns false (client-side validation). */
  validType?: (type: number) => boolean;
}

export class MessageReader {
  private readonly head = Buffer.alloc(HEADER);
  private parts: Buffer[] = [];
  /** Bytes of the current partial message held (header included). */
  private held = 0;
  /** Total length of the current partial message once its header is known, else -1. */
  private need = -1;
  private maxFrameBytes: number;
  private validType: ((type: number) => boolean) | undefined;
  /** Set after an error: the stream is no longer framed and nothing more is parsed. */
  failed: FrameError | undefined;

  constructor(options: MessageReaderOptions) {
    this.maxFrameBytes = options.maxFrameBytes;
    this.validType = options.validType;
  }

  /** Change limits between phases (e.g. authentication → relay). */
  configure(options: Partial<MessageReaderOptions>): void {
    if (options.maxFrameBytes !== undefined) this.maxFrameBytes = options.maxFrameBytes;
    if ('validType' in options) this.validType = options.validType;
  }

  /** Bytes held for a message not yet complete. */
  get buffered(): number {
    return this.held;
  }

  /** The held bytes of an incomplete message (a copy), and forget them; undefined if none or failed. */
  takeHeld(): Buffer | undefined {
    if (this.held === 0 || this.failed) return undefined;
    const bytes = this.need < 0 ? Buffer.from(this.head.subarray(0, this.held)) : Buffer.concat(this.parts, this.held);
    this.parts = [];
    this.held = 0;
    this.need = -1;
    return bytes;
  }

  private check(type: number, length: number, offset: number): FrameError | undefined {
    if (this.validType && !this.validType(type)) {
      return { code: 'GW_ERR_PROTOCOL', message: `invalid message type 0x${type.toString(16).padStart(2, '0')}`, offset };
    }
    if (length < 4) return { code: 'GW_ERR_PROTOCOL', message: `invalid message length ${length}`, offset };
    if (length + 1 > this.maxFrameBytes) {
      return { code: 'GW_ERR_FRAME_TOO_LARGE', message: `message too large (${length + 1} bytes, limit ${this.maxFrameBytes})`, offset };
    }
    return undefined;
  }

  /**
   * Feed a chunk; `onMessage` gets each complete message (type byte, whole message incl. header).
   * Views are valid as long as the chunk is (callers must not mutate chunks). A `borrowed` chunk
   * is valid only during this call (a reused read buffer): the head of a message it leaves
   * incomplete is then copied, not kept as a view. Returns the error that stopped parsing, if
   * any; messages before it were delivered.
   */
  push(chunk: Buffer, onMessage: MessageHandler, borrowed = false): FrameError | undefined {
    if (this.failed) return this.failed;
    const n = chunk.length;
    let off = 0;
    if (this.held > 0) {
      if (this.need < 0) {
        const take = Math.min(HEADER - this.held, n);
        chunk.copy(this.head, this.held, 0, take);
        this.held += take;
        off = take;
        if (this.held < HEADER) return undefined;
        const err = this.check(this.head[0]!, this.head.readUInt32BE(1), 0);
        if (err) return (this.failed = err);
        this.need = 1 + this.head.readUInt32BE(1);
        this.parts = [Buffer.from(this.head)];
      }
      const rest = this.need - this.held;
      if (n - off < rest) {
        if (n > off) this.parts.push(borrowed ? Buffer.from(chunk.subarray(off)) : chunk.subarray(off));
        this.held += n - off;
        return undefined;
      }
      this.parts.push(chunk.subarray(off, off + rest));
      off += rest;
      const message = Buffer.concat(this.parts, this.need);
      this.parts = [];
      this.held = 0;
      this.need = -1;
      onMessage(message[0]!, message);
    }
    while (n - off >= HEADER) {
      const type = chunk[off]!;
      const length = chunk.readUInt32BE(off + 1);
      const err = this.check(type, length, off);
      if (err) return (this.failed = err);
      const total = 1 + length;
      if (n - off < total) {
        this.parts = [borrowed ? Buffer.from(chunk.subarray(off)) : chunk.subarray(off)];
        this.held = n - off;
        this.need = total;
        return undefined;
      }
      onMessage(type, chunk.subarray(off, off + total));
      off += total;
    }
    if (off < n) {
      chunk.copy(this.head, 0, off);
      this.held = n - off;
      this.need = -1;
    }
    return undefined;
  }
}

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: Buffer }
  | { kind: 'startup'; major: number; minor: number; params: Map<string, string> };

export class ProtocolViolation extends Error {
  constructor(
    readonly code: GatewayErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Reassembles one startup-phase packet (int32 length incl. itself, max `maxBytes`). */
export class StartupReader {
  private parts: Buffer[] = [];
  private held = 0;
  constructor(private readonly maxBytes: number) {}

  get buffered(): number {
    return this.held;
  }

  /**
   * Feed a chunk. Returns the complete packet and whatever followed it in the chunk, or undefined
   * while incomplete. Throws ProtocolViolation on a bad or oversized length (checked before
   * buffering the body).
   */
  push(chunk: Buffer): { packet: Buffer; rest: Buffer } | undefined {
    const data = this.held === 0 ? chunk : Buffer.concat([...this.parts, chunk]);
    if (data.length < 4) {
      this.parts = [data];
      this.held = data.length;
      return undefined;
    }
    const length = data.readUInt32BE(0);
    if (length < 8) throw new ProtocolViolation('GW_ERR_STARTUP_INVALID', `invalid startup packet length ${length}`);
    if (length > this.maxBytes) {
      throw new ProtocolViolation('GW_ERR_FRAME_TOO_LARGE', `startup packet too large (${length} bytes, limit ${this.maxBytes})`);
    }
    if (data.length < length) {
      this.parts = [data];
      this.held = data.length;
      return undefined;
    }
    this.parts = [];
    this.held = 0;
    return { packet: data.subarray(0, length), rest: data.subarray(length) };
  }
}

/** Decode a complete startup-phase packet. Throws ProtocolViolation. */
export function parseStartupPacket(packet: Buffer): StartupPacket {
  const code = packet.readUInt32BE(4);
  if (code === StartupCode.SSLRequest || code === StartupCode.GSSENCRequest) {
    if (packet.length !== 8) throw new ProtocolViolation('GW_ERR_STARTUP_INVALID', 'invalid length of encryption request');
    return { kind: code === StartupCode.SSLRequest ? 'ssl' : 'gssenc' };
  }
  if (code === StartupCode.CancelRequest) {
    if (packet.length !== 16) throw new ProtocolViolation('GW_ERR_STARTUP_INVALID', 'invalid length of cancel request');
    return { kind: 'cancel', pid: packet.readUInt32BE(8), secret: Buffer.from(packet.subarray(12, 16)) };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) {
    throw new ProtocolViolation('GW_ERR_PROTOCOL_VERSION', `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`);
  }
  const params = new Map<string, string>();
  let off = 8;
  for (;;) {
    if (off >= packet.length) throw new ProtocolViolation('GW_ERR_STARTUP_INVALID', 'startup packet parameter list is not terminated');
    if (packet[off] === 0) {
      if (off !== packet.length - 1) throw new ProtocolViolation('GW_ERR_STARTUP_INVALID', 'trailing bytes after startup parameters');
      break;
    }
    const keyEnd = packet.indexOf(0, off);
    const valEnd = keyEnd < 0 ? -1 : packet.indexOf(0, keyEnd + 1);
    if (keyEnd < 0 || valEnd < 0) throw new ProtocolViolation('GW_ERR_STARTUP_INVALID', 'startup parameter is not terminated');
    params.set(packet.toString('utf8', off, keyEnd), packet.toString('utf8', keyEnd + 1, valEnd));
    off = valEnd + 1;
  }
  const user = params.get('user');
  if (user === undefined || user.length === 0) {
    throw new ProtocolViolation('GW_ERR_STARTUP_INVALID', 'no user name specified in startup packet');
  }
  return { kind: 'startup', major, minor, params };
}

// ---- builders -----------------------------------------------------------------------------

function typed(type: string, bodyLength: number): { buf: Buffer; off: number } {
  const buf = Buffer.allocUnsafe(1 + 4 + bodyLength);
  buf[0] = type.charCodeAt(0);
  buf.writeUInt32BE(4 + bodyLength, 1);
  return { buf, off: 5 };
}

export interface ErrorFields {
  severity: 'FATAL' | 'ERROR' | 'PANIC' | 'WARNING' | 'NOTICE';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** ErrorResponse ('E') with S, V, C, M (and D, H when given). */
export function errorResponse(f: ErrorFields): Buffer {
  const fields: [string, string][] = [
    [ErrorField.Severity, f.severity],
    [ErrorField.SeverityV, f.severity],
    [ErrorField.Code, f.code],
    [ErrorField.Message, f.message],
  ];
  if (f.detail) fields.push([ErrorField.Detail, f.detail]);
  if (f.hint) fields.push([ErrorField.Hint, f.hint]);
  const body = Buffer.concat([...fields.map(([k, v]) => Buffer.from(`${k}${v}\0`, 'utf8')), Buffer.from([0])]);
  const { buf, off } = typed('E', body.length);
  body.copy(buf, off);
  return buf;
}

/** NoticeResponse ('N'): what PostgreSQL sends for RAISE NOTICE; clients show it and go on waiting. */
export function noticeResponse(message: string): Buffer {
  const body = Buffer.from(`${ErrorField.Severity}NOTICE\0${ErrorField.SeverityV}NOTICE\0${ErrorField.Code}00000\0${ErrorField.Message}${message}\0\0`, 'utf8');
  const { buf, off } = typed('N', body.length);
  body.copy(buf, off);
  return buf;
}

/** Parse the fields of an ErrorResponse/NoticeResponse message (whole message). */
export function parseErrorFields(message: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 5;
  while (off < message.length && message[off] !== 0) {
    const end = message.indexOf(0, off + 1);
    if (end < 0) break;
    out[String.fromCharCode(message[off]!)] = message.toString('utf8', off + 1, end);
    off = end + 1;
  }
  return out;
}

function auth(code: number, extra?: Buffer): Buffer {
  const { buf } = typed('R', 4 + (extra?.length ?? 0));
  buf.writeUInt32BE(code, 5);
  if (extra) extra.copy(buf, 9);
  return buf;
}

export const authenticationOk = (): Buffer => auth(0);
export const authenticationCleartextPassword = (): Buffer => auth(3);

export function parameterStatus(name: string, value: string): Buffer {
  const body = Buffer.from(`${name}\0${value}\0`, 'utf8');
  const { buf, off } = typed('S', body.length);
  body.copy(buf, off);
  return buf;
}

export function backendKeyData(pid: number, secret: Buffer): Buffer {
  const { buf } = typed('K', 4 + secret.length);
  buf.writeUInt32BE(pid >>> 0, 5);
  secret.copy(buf, 9);
  return buf;
}

export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  const { buf } = typed('Z', 1);
  buf[5] = status.charCodeAt(0);
  return buf;
}

/** NegotiateProtocolVersion ('v'): newest minor we support and the `_pq_.` options we ignored. */
export function negotiateProtocolVersion(minor: number, unrecognized: string[]): Buffer {
  const names = Buffer.from(unrecognized.map((n) => `${n}\0`).join(''), 'utf8');
  const { buf } = typed('v', 8 + names.length);
  buf.writeUInt32BE(minor, 5);
  buf.writeUInt32BE(unrecognized.length, 9);
  names.copy(buf, 13);
  return buf;
}

/** Single-byte answers to SSLRequest / GSSENCRequest. */
export const SSL_YES = Buffer.from('S');
export const SSL_NO = Buffer.from('N');

function startupPacket(code: number, body: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(8 + body.length);
  buf.writeUInt32BE(8 + body.length, 0);
  buf.writeUInt32BE(code, 4);
  body.copy(buf, 8);
  return buf;
}

export function startupMessage(params: ReadonlyMap<string, string> | Record<string, string>): Buffer {
  const entries = params instanceof Map ? [...params] : Object.entries(params);
  const body = Buffer.from(entries.map(([k, v]) => `${k}\0${v}\0`).join('') + '\0', 'utf8');
  return startupPacket(StartupCode.ProtocolV3, body);
}

export const sslRequest = (): Buffer => startupPacket(StartupCode.SSLRequest, Buffer.alloc(0));

export function cancelRequest(pid: number, secret: Buffer): Buffer {
  const body = Buffer.allocUnsafe(4 + secret.length);
  body.writeUInt32BE(pid >>> 0, 0);
  secret.copy(body, 4);
  return startupPacket(StartupCode.CancelRequest, body);
}

/** PasswordMessage ('p') with a NUL-terminated string (cleartext or md5 answer). */
export function passwordMessage(value: string): Buffer {
  const body = Buffer.from(`${value}\0`, 'utf8');
  const { buf, off } = typed('p', body.length);
  body.copy(buf, off);
  return buf;
}

/** The NUL-terminated string of a PasswordMessage, or undefined if not terminated. */
export function passwordOf(message: Buffer): string | undefined {
  const end = message.indexOf(0, 5);
  if (end !== message.length - 1) return undefined;
  return message.toString('utf8', 5, end);
}

/** SASLInitialResponse ('p'): mechanism name, int32 length, initial response. */
export function saslInitialResponse(mechanism: string, data: Buffer): Buffer {
  const mech = Buffer.from(`${mechanism}\0`, 'utf8');
  const { buf, off } = typed('p', mech.length + 4 + data.length);
  mech.copy(buf, off);
  buf.writeInt32BE(data.length, off + mech.length);
  data.copy(buf, off + mech.length + 4);
  return buf;
}

/** SASLResponse ('p'): the raw SASL data. */
export function saslResponse(data: Buffer): Buffer {
  const { buf, off } = typed('p', data.length);
  data.copy(buf, off);
  return buf;
}

export const terminate = (): Buffer => typed('X', 0).buf;
