/**
 * SessionRecorder: one per gateway session. Turns protocol messages and lifecycle facts into
 * sealed, chained events keyed by session id. Where the sealing happens is the sink's business:
 * on this thread (EventSink) or on the recorder thread (RecorderLink), so the socket thread only
 * counts and hands bytes over.
 */
import { nowUs, type ChainInput, type ChainedRecord, type Direction } from '@vigil/schemas';
import type { ChainWriter, GatewayInfo, RecordSink } from './sink.ts';

export type { GatewayInfo } from './sink.ts';

/**
 * How long after session.ended the chain is closed (its state on the recorder thread retired).
 * An event that still arrives (an approval outcome settling late, a mask report) keeps its place
 * in the chain either way: the recorder thread keeps retired chains for late events (host.ts).
 */
const CLOSE_GRACE_MS = 30_000;

export class SessionRecorder {
  private readonly chain: ChainWriter;
  private events = 0;
  readonly counts = { bytes_c2s: 0, bytes_s2c: 0, messages_c2s: 0, messages_s2c: 0 };

  constructor(
    sink: RecordSink,
    readonly sessionId: string,
    gateway: GatewayInfo,
  ) {
    this.chain = sink.openChain(sessionId, gateway);
  }

  /** Record one protocol message exactly as it crossed the gateway. `data` is copied before this returns (ChainWriter.frame). */
  frame(direction: Direction, msgType: string | undefined, data: Uint8Array): void {
    if (direction === 'c2s') {
      this.counts.bytes_c2s += data.length;
      this.counts.messages_c2s++;
    } else {
      this.counts.bytes_s2c += data.length;
      this.counts.messages_s2c++;
    }
    this.events++;
    this.chain.frame(direction, msgType, data, nowUs());
  }

  /** Record a non-frame event (session.started, auth.failed, …) in the same chain. */
  event(input: ChainInput): void {
    this.events++;
    this.chain.event(input.time === undefined ? { ...input, time: nowUs() } : input);
    if (input.type === 'session.ended') setTimeout(() => this.chain.close(), CLOSE_GRACE_MS).unref();
  }

  /**
   * Record an event whose sealed bytes are needed elsewhere (approval requests and outcomes are
   * mirrored on the approvals topic). Its place in the chain is taken now, synchronously; only the
   * sealed record arrives later.
   */
  sealedEvent(input: ChainInput): Promise<ChainedRecord> {
    this.events++;
    return this.chain.sealedEvent(input.time === undefined ? { ...input, time: nowUs() } : input);
  }

  /** Events recorded so far (= the next seq). */
  get length(): number {
    return this.events;
  }
}
