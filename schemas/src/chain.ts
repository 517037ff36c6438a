/**
 * Per-session sequencing and hash chaining, as the gateway does it: each call to `next` assigns
 * the next gap-free `seq`, links `prev_hash` to the previous event and seals the record.
 * One `SessionChain` per session; not shared across sessions, so no locking is needed.
 */
import { randomUUID } from 'node:crypto';
import { seal, sealFrame, frameHeaderParts, msgTypeJson, type FrameHeaderParts, type UnsealedEvent } from './codec.ts';
import { GENESIS_HASH } from './envelope.ts';
import { advanceChain, chainSeq, frameSlabs, nativeChainState, nativeSealer, type NativeSealFrame } from './native.ts';

/** Event members the chain fills in. */
type ChainManaged = 'session_id' | 'seq' | 'prev_hash' | 'hash' | 'event_id' | 'time' | 'gateway_id' | 'gateway_version';
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type ChainInput = DistributiveOmit<UnsealedEvent, Exclude<ChainManaged, 'hash'>> & {
  /** Defaults to now. */
  time?: number;
};

export interface ChainedRecord {
  seq: number;
  hash: string;
  bytes: Buffer;
}

/** µs since epoch with sub-ms resolution, monotonic within the process. */
const originUs = Date.now() * 1000 - Math.round(performance.now() * 1000);
export function nowUs(): number {
  return originUs + Math.round(performance.now() * 1000);
}

/** A frame sealed by the native sealer: its hash is read from the record when someone asks. */
class NativeFrameRecord implements ChainedRecord {
  constructor(
    readonly seq: number,
    readonly bytes: Buffer,
  ) {}

  get hash(): string {
    return this.bytes.toString('hex', 2, 34);
  }
}

const msgTypeParts = new Map<string, Buffer>();
function msgTypePart(msgType: string): Buffer {
  let b = msgTypeParts.get(msgType);
  if (b === undefined) {
    b = Buffer.from(msgTypeJson(msgType), 'utf8');
    if (msgTypeParts.size < 256) msgTypeParts.set(msgType, b);
  }
  return b;
}

export class SessionChain {
  private seq = 0;
  private prevHash = GENESIS_HASH;
  private readonly parts: FrameHeaderParts;
  /**
   * With the native sealer: the chain's head (hash, seq) lives in this buffer, which the sealer
   * updates in place, and `seq`/`prevHash` above are unused.
   */
  private readonly state: Buffer | undefined;
  private readonly addon: NativeSealFrame | undefined;

  constructor(
    readonly sessionId: string,
    private readonly gateway: { gateway_id: string; gateway_version: string },
    options: {
      /** 'js': never the native sealer (tests compare the two); default: the process's choice. */
      sealer?: 'js';
    } = {},
  ) {
    this.parts = frameHeaderParts(sessionId, gateway.gateway_id, gateway.gateway_version);
    const addon = options.sealer === 'js' ? undefined : nativeSealer.addon;
    this.state = addon && nativeChainState(this.parts.gateway, this.parts.session);
    this.addon = this.state && addon;
  }

  /** Seal the next event as a `frame` (the hot path: no event object, no generic canonicaliser). */
  frame(direction: 'c2s' | 's2c', msgType: string | undefined, data: Uint8Array, time = nowUs()): ChainedRecord {
    if (this.addon) {
      const seq = chainSeq(this.state!);
      return new NativeFrameRecord(seq, frameSlabs.seal(this.addon, this.state!, direction === 's2c', msgType === undefined ? undefined : msgTypePart(msgType), time, data));
    }
    const seq = this.seq;
    const { hash, bytes } = sealFrame(this.parts, this.prevHash, seq, randomUUID(), time, direction, msgType, data);
    this.seq = seq + 1;
    this.prevHash = hash;
    return { seq, hash, bytes };
  }

  /**
   * Seal the next frame straight into `out` at `at` (a native chain only: see `native`), e.g. in
   * place in a log record. Returns where the sealed bytes end, or minus the room they need from
   * `at` when they do not fit (nothing is sealed then: call again with room).
   */
  sealFrameInto(out: Buffer, at: number, direction: 'c2s' | 's2c', msgType: string | undefined, data: Uint8Array, time: number): number {
    if (!this.addon) throw new Error('sealFrameInto needs the native sealer (SessionChain.native)');
    return this.addon.sealFrame(out, at, this.state!, direction === 's2c' ? 1 : 0, msgType === undefined ? undefined : msgTypePart(msgType), time, data);
  }

  /**
   * A native chain's state buffer (hash, seq, header fragments) for the native batch sealer
   * (`sealFrames`), which advances it in place as `sealFrameInto` does; undefined for a JS chain.
   */
  get nativeState(): Buffer | undefined {
    return this.addon && this.state;
  }

  /** Number of events sealed so far (= next seq). */
  get length(): number {
    return this.state ? chainSeq(this.state) : this.seq;
  }

  get lastHash(): string {
    return this.state ? this.state.toString('hex', 0, 32) : this.prevHash;
  }

  /** Whether frames of this chain are sealed natively (metrics, tests). */
  get native(): boolean {
    return this.addon !== undefined;
  }

  next(input: ChainInput): ChainedRecord {
    const seq = this.length;
    const event = {
      ...input,
      event_id: randomUUID(),
      time: input.time ?? nowUs(),
      session_id: this.sessionId,
      seq,
      prev_hash: this.lastHash,
      gateway_id: this.gateway.gateway_id,
      gateway_version: this.gateway.gateway_version,
    } as UnsealedEvent;
    const { hash, bytes } = seal(event);
    if (this.state) advanceChain(this.state, hash, seq + 1);
    else {
      this.seq = seq + 1;
      this.prevHash = hash;
    }
    return { seq, hash, bytes };
  }
}
