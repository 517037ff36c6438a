/**
 * Streaming chain verification for auditors (`vigil verify`): records of many sessions arrive
 * interleaved, in log order; per session only the expected seq and the last hash are kept, so a
 * log of any size is checked in constant memory per session.
 */
import { decode, verifyRecord } from './codec.ts';
import { GENESIS_HASH } from './envelope.ts';

export interface SessionVerdict {
  session_id: string;
  events: number;
  /** The session's last event is `session.ended`. */
  ended: boolean;
  lastHash: string;
  /** First problem, if any (the session is not checked further after it). */
  problem?: string;
}

export class ChainVerifier {
  private readonly sessions = new Map<string, SessionVerdict>();
  /** Records that are not Vigil events at all. */
  undecodable = 0;

  push(bytes: Buffer): void {
    let event;
    try {
      event = decode(bytes);
    } catch {
      this.undecodable++;
      return;
    }
    let s = this.sessions.get(event.session_id);
    if (!s) this.sessions.set(event.session_id, (s = { session_id: event.session_id, events: 0, ended: false, lastHash: GENESIS_HASH }));
    if (s.problem) return;
    if (s.ended) s.problem = `seq ${event.seq}: event after session.ended`;
    else if (event.seq !== s.events) s.problem = `seq ${event.seq}: expected ${s.events} (gap or reorder)`;
    else if (event.prev_hash !== s.lastHash) s.problem = `seq ${event.seq}: prev_hash does not link to the previous event`;
    else if (!verifyRecord(bytes, s.lastHash)) s.problem = `seq ${event.seq}: hash does not match the stored bytes`;
    if (s.problem) return;
    s.events++;
    s.lastHash = event.hash;
    s.ended = event.type === 'session.ended';
  }

  verdicts(): SessionVerdict[] {
    return [...this.sessions.values()];
  }
}
