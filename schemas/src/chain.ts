/**
 * Per-session sequencing and hash chaining, as the gateway does it: each call to `next` assigns
 * the next gap-free `seq`, links `prev_hash` to the previous event and seals the record.
 * One `SessionChain` per session; not shared across sessions, so no locking is needed.
 */
import { randomUUID } from 'node:crypto';
import { seal, sealFrame, frameHeaderParts, type FrameHeaderParts, type UnsealedEvent } from './codec.ts';
import { GENESIS_HASH } from './envelope.ts';

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

export class SessionChain {
  private seq = 0;
  private prevHash = GENESIS_HASH;
  private readonly parts: FrameHeaderParts;

  constructor(
    readonly sessionId: string,
    private readonly gateway: { gateway_id: string; gateway_version: string },
  ) {
    this.parts = frameHeaderParts(sessionId, gateway.gateway_id, gateway.gateway_version);
  }

  /** Seal the next event as a `frame` (the hot path: no event object, no generic canonicaliser). */
  frame(direction: 'c2s' | 's2c', msgType: string | undefined, data: Uint8Array, time = nowUs()): ChainedRecord {
    const seq = this.seq;
    const { hash, bytes } = sealFrame(this.parts, this.prevHash, seq, randomUUID(), time, direction, msgType, data);
    this.seq = seq + 1;
    this.prevHash = hash;
    return { seq, hash, bytes };
  }

  /** Number of events sealed so far (= next seq). */
  get length(): number {
    return this.seq;
  }

  get lastHash(): string {
    return this.prevHash;
  }

  next(input: ChainInput): ChainedRecord {
    const event = {
      ...input,
      event_id: randomUUID(),
      time: input.time ?? nowUs(),
      session_id: this.sessionId,
      seq: this.seq,
      prev_hash: this.prevHash,
      gateway_id: this.gateway.gateway_id,
      gateway_version: this.gateway.gateway_version,
    } as UnsealedEvent;
    const { hash, bytes } = seal(event);
    const record = { seq: this.seq, hash, bytes };
    this.seq++;
    this.prevHash = hash;
    return record;
  }
}
