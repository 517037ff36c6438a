/**
 * Binary record format of chained events in the event log (value of a log record):
 *
 *   0      u8   magic 0x56 ('V')
 *   1      u8   format version (1)
 *   2..33  32B  hash (raw SHA-256)
 *   34..37 u32  header length H (big endian)
 *   38..   H    header: canonical JSON of the event without `hash` and without `data`
 *   ..end       data: the raw protocol bytes of a `frame` event (empty for other types)
 *
 * hash = SHA-256( prev_hash(32 raw bytes) ‖ u32be(H) ‖ header ‖ data ), and `prev_hash` is itself
 * a member of the header, so every event commits to its predecessor. The hash covers the exact
 * bytes in the log, so a verifier never re-serialises; canonical JSON makes the header bytes
 * reproducible by an independent encoder (auditors re-deriving hashes from stored fields).
 *
 * Frames keep their payload binary: no base64, no JSON escaping on the hot path.
 */
import { createHash } from 'node:crypto';
import * as nodeCrypto from 'node:crypto';
import { canonicalJson } from './canonical.ts';
import { GENESIS_HASH } from './envelope.ts';
import type { ChainedEvent } from './index.ts';

export const MAGIC = 0x56;
export const FORMAT_VERSION = 1;
const HEADER_OFFSET = 38;

export class CodecError extends Error {
  readonly code = 'SCHEMA_ERR_DECODE';
  readonly retriable = false;
}

/** An event before sealing: everything but `hash` (which sealing computes). */
export type UnsealedEvent = DistributiveOmit<ChainedEvent, 'hash'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Header JSON of an event: all members except `hash` and `data`. */
function headerOf(event: UnsealedEvent): string {
  if (event.type === 'frame') {
    const { data: _data, ...rest } = event;
    return canonicalJson(rest);
  }
  return canonicalJson(event);
}

export interface Sealed {
  hash: string;
  bytes: Buffer;
}

/** Compute the hash of `event` (whose prev_hash is already set) and encode it. */
export function seal(event: UnsealedEvent): Sealed {
  const header = Buffer.from(headerOf(event), 'utf8');
  const data = event.type === 'frame' ? event.data : EMPTY;
  const out = Buffer.allocUnsafe(HEADER_OFFSET + header.length + data.length);
  out[0] = MAGIC;
  out[1] = FORMAT_VERSION;
  out.writeUInt32BE(header.length, 34);
  header.copy(out, HEADER_OFFSET);
  out.set(data, HEADER_OFFSET + header.length);
  const digest = digestOf(event.prev_hash, out.subarray(34));
  digest.copy(out, 2);
  return { hash: digest.toString('hex'), bytes: out };
}

const EMPTY = new Uint8Array(0);

/** SHA-256(prev_hash raw ‖ u32 H ‖ header ‖ data); `rest` is exactly bytes 34..end of a record. */
function digestOf(prevHashHex: string, rest: Uint8Array): Buffer {
  return createHash('sha256').update(Buffer.from(prevHashHex, 'hex')).update(rest).digest();
}

/**
 * The gateway's hot path: seal a `frame` event without building an event object or running the
 * generic canonicaliser. `prefix` and `suffix` are the constant parts of the header for one session
 * (see FrameHeaderParts); the result is byte-identical to `seal()` of the same frame — a test
 * checks that on random frames.
 */
export function sealFrame(
  parts: FrameHeaderParts,
  prevHash: string,
  seq: number,
  eventId: string,
  time: number,
  direction: 'c2s' | 's2c',
  msgType: string | undefined,
  data: Uint8Array,
): Sealed {
  // Keys in canonical (sorted) order: direction, event_id, gateway_id, gateway_version, msg_type,
  // prev_hash, seq, session_id, time, type, version.
  const header =
    (direction === 'c2s' ? '{"direction":"c2s","event_id":"' : '{"direction":"s2c","event_id":"') +
    eventId +
    parts.gateway +
    (msgType === undefined ? '' : msgTypeJson(msgType)) +
    ',"prev_hash":"' +
    prevHash +
    '","seq":' +
    seq +
    parts.session +
    time +
    ',"type":"frame","version":1}';
  // A hostile client can send any type byte; only pure-ASCII headers take the length shortcut.
  const ascii = parts.ascii && (msgType === undefined || isAscii(msgType));
  const headerLength = ascii ? header.length : Buffer.byteLength(header, 'utf8');
  const out = Buffer.allocUnsafe(HEADER_OFFSET + headerLength + data.length);
  out[0] = MAGIC;
  out[1] = FORMAT_VERSION;
  out.writeUInt32BE(headerLength, 34);
  out.write(header, HEADER_OFFSET, headerLength, ascii ? 'latin1' : 'utf8');
  out.set(data, HEADER_OFFSET + headerLength);
  // The hash field's slot holds prev_hash while hashing, so prev ‖ u32 ‖ header ‖ data is one
  // contiguous range and one-shot hashing applies (no Hash object per frame); then the slot gets
  // the digest. The digest comes back as hex: the next header needs it as text anyway, and a
  // Buffer result would cost an ArrayBuffer per frame (a malloc, and external memory that drives
  // the collector) — on the recorder thread that was the largest single cost after hashing.
  out.write(prevHash, 2, 32, 'hex');
  const hash = oneShotSha256Hex(out.subarray(2));
  out.write(hash, 2, 32, 'hex');
  return { hash, bytes: out };
}

/** Constant header fragments of one session's frames, escaped once. */
export interface FrameHeaderParts {
  /** `","gateway_id":…,"gateway_version":…` (closes event_id's string). */
  gateway: string;
  /** `,"session_id":…,"time":` */
  session: string;
  /** Every fragment is ASCII, so string length = byte length (the common case). */
  ascii: boolean;
}

export function frameHeaderParts(sessionId: string, gatewayId: string, gatewayVersion: string): FrameHeaderParts {
  const gateway = `","gateway_id":${JSON.stringify(gatewayId)},"gateway_version":${JSON.stringify(gatewayVersion)}`;
  const session = `,"session_id":${JSON.stringify(sessionId)},"time":`;
  // eslint-disable-next-line no-control-regex
  const ascii = /^[\x00-\x7f]*$/.test(gateway + session);
  return { gateway, session, ascii };
}

/** crypto.hash (Node ≥ 20.12) is a one-shot digest; fall back to a Hash object elsewhere. */
const cryptoHash = (nodeCrypto as unknown as { hash?: (alg: string, data: Uint8Array, enc: 'hex') => string }).hash;
const oneShotSha256Hex: (data: Uint8Array) => string = cryptoHash
  ? (data) => cryptoHash('sha256', data, 'hex')
  : (data) => createHash('sha256').update(data).digest('hex');

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

const msgTypeCache = new Map<string, string>();
/** `,"msg_type":<JSON string>`: the header member a frame's message type adds. */
export function msgTypeJson(msgType: string): string {
  let s = msgTypeCache.get(msgType);
  if (s === undefined) {
    s = `,"msg_type":${JSON.stringify(msgType)}`;
    // PostgreSQL has a few dozen type letters; don't let odd input grow the cache without bound.
    if (msgTypeCache.size < 256) msgTypeCache.set(msgType, s);
  }
  return s;
}

/** Decode one record value. `data` of a frame is a view into `bytes` (no copy). */
export function decode(bytes: Buffer): ChainedEvent {
  if (bytes.length < HEADER_OFFSET) throw new CodecError(`record too short (${bytes.length} bytes)`);
  if (bytes[0] !== MAGIC) throw new CodecError(`bad magic 0x${bytes[0]!.toString(16)}`);
  if (bytes[1] !== FORMAT_VERSION) throw new CodecError(`unsupported format version ${bytes[1]}`);
  const headerLength = bytes.readUInt32BE(34);
  const dataStart = HEADER_OFFSET + headerLength;
  if (dataStart > bytes.length) throw new CodecError(`header length ${headerLength} exceeds record`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(bytes.toString('utf8', HEADER_OFFSET, dataStart)) as Record<string, unknown>;
  } catch (err) {
    throw new CodecError('header is not JSON', { cause: err });
  }
  const hash = bytes.toString('hex', 2, 34);
  if (header.type === 'frame') {
    return { ...header, hash, data: bytes.subarray(dataStart) } as unknown as ChainedEvent;
  }
  if (dataStart !== bytes.length) throw new CodecError(`${String(header.type)} event carries a payload`);
  return { ...header, hash } as unknown as ChainedEvent;
}

/** True when the record's stored hash matches its bytes and the given predecessor hash. */
export function verifyRecord(bytes: Buffer, expectedPrevHash: string): boolean {
  const event = decode(bytes);
  if (event.prev_hash !== expectedPrevHash) return false;
  return digestOf(expectedPrevHash, bytes.subarray(34)).equals(bytes.subarray(2, 34));
}

export interface ChainReport {
  ok: boolean;
  events: number;
  /** First problem found, e.g. "seq 7: expected 6 (gap)". */
  problem?: string;
  lastHash: string;
}

/**
 * Verify one session's records in log order: seq gap-free from 0, each prev_hash equal to the
 * previous hash, each hash correct over the stored bytes.
 */
export function verifyChain(records: Iterable<Buffer>): ChainReport {
  let expectedSeq = 0;
  let prev = GENESIS_HASH;
  let sessionId: string | undefined;
  for (const bytes of records) {
    const event = decode(bytes);
    const fail = (problem: string): ChainReport => ({ ok: false, events: expectedSeq, problem, lastHash: prev });
    if (sessionId === undefined) sessionId = event.session_id;
    else if (event.session_id !== sessionId) return fail(`seq ${event.seq}: belongs to session ${event.session_id}`);
    if (event.seq !== expectedSeq) return fail(`seq ${event.seq}: expected ${expectedSeq} (gap or reorder)`);
    if (event.prev_hash !== prev) return fail(`seq ${event.seq}: prev_hash does not link to the previous event`);
    if (!verifyRecord(bytes, prev)) return fail(`seq ${event.seq}: hash does not match the stored bytes`);
    prev = event.hash;
    expectedSeq++;
  }
  return { ok: true, events: expectedSeq, lastHash: prev };
}
