/**
 * Cancel keys. Clients receive a gateway-issued BackendKeyData (pid, secret), never the target's:
 * the target's key would let anyone who learns it cancel queries behind the gateway's back, and a
 * gateway fronting several targets needs to know where a CancelRequest goes. Pure bookkeeping; the
 * secret comparison is constant-time, and an unknown pid costs the same compare as a known one.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

export interface CancelTarget {
  sessionId: string;
  /** Configured target the session runs on (its host/port/TLS settings are used for the cancel). */
  targetId: string;
  /** The target's own key from its BackendKeyData. */
  upstreamPid: number;
  upstreamSecret: Buffer;
  /**
   * Cancels what the gateway itself is holding for the session (a statement waiting for approval);
   * true when there was something to cancel, and then the target has nothing to cancel.
   */
  interrupt?: () => boolean;
}

interface Entry {
  secret: Buffer;
  target: CancelTarget;
}

const DUMMY = Buffer.alloc(4);

export class CancelRegistry {
  private readonly byPid = new Map<number, Entry>();

  /** Issue a fresh (pid, secret) for a session and remember where its cancels go. */
  issue(target: CancelTarget): { pid: number; secret: Buffer } {
    let pid: number;
    // Positive 31-bit ids like a real backend pid; retry on the (rare) collision.
    do pid = randomInt(1, 0x7fffffff);
    while (this.byPid.has(pid));
    const secret = randomBytes(4);
    this.byPid.set(pid, { secret, target });
    return { pid, secret };
  }

  /** The target for a CancelRequest's key, or undefined (unknown pid or wrong secret). */
  lookup(pid: number, secret: Buffer): CancelTarget | undefined {
    const entry = this.byPid.get(pid);
    const expected = entry?.secret ?? DUMMY;
    const ok = secret.length === expected.length && timingSafeEqual(secret, expected);
    return ok && entry ? entry.target : undefined;
  }

  release(pid: number): void {
    this.byPid.delete(pid);
  }

  get size(): number {
    return this.byPid.size;
  }
}
