/**
 * SessionRecorder: one per gateway session. Turns protocol messages and lifecycle facts into
 * sealed, chained events and appends them to the process's EventSink, keyed by session id.
 */
import { SessionChain, type ChainInput, type ChainedRecord, type Direction } from '@vigil/schemas';
import type { EventSink } from './sink.ts';

export interface GatewayInfo {
  gateway_id: string;
  gateway_version: string;
}

export class SessionRecorder {
  private readonly chain: SessionChain;
  readonly counts = { bytes_c2s: 0, bytes_s2c: 0, messages_c2s: 0, messages_s2c: 0 };

  constructor(
    private readonly sink: EventSink,
    readonly sessionId: string,
    gateway: GatewayInfo,
  ) {
    this.chain = new SessionChain(sessionId, gateway);
  }

  /** Record one protocol message exactly as it crossed the gateway. `data` must not be mutated later. */
  frame(direction: Direction, msgType: string | undefined, data: Uint8Array): void {
    if (direction === 'c2s') {
      this.counts.bytes_c2s += data.length;
      this.counts.messages_c2s++;
    } else {
      this.counts.bytes_s2c += data.length;
      this.counts.messages_s2c++;
    }
    const record = this.chain.frame(direction, msgType, data);
    this.sink.append(this.sessionId, record.bytes);
  }

  /** Record a non-frame event (session.started, auth.failed, …) in the same chain. */
  event(input: ChainInput): ChainedRecord {
    const record = this.chain.next(input);
    this.sink.append(this.sessionId, record.bytes, { type: input.type });
    return record;
  }

  /** Events recorded so far. */
  get length(): number {
    return this.chain.length;
  }
}
