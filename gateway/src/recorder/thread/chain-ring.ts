/**
 * The recorder host's natively sealed chains, by slot, in the form the native batch sealer reads
 * (schemas/src/native.ts NativeChains): a fixed ring, so its memory does not grow with the number
 * of sessions a process has seen (slots only ever increase). Slot s lives at s % size; a newer
 * slot that lands on a long-lived session's entry takes it, and that session's frames are then
 * sealed by the host's per-op path (the same bytes, found through its chain map), not lost.
 */
import type { NativeChains } from '@vigil/schemas/native';

/** Entries: well above the sessions one gateway holds open, ~1.5 MB. */
export const CHAIN_RING_SIZE = 65_536;

export class ChainRing implements NativeChains {
  readonly owners: Float64Array;
  readonly states: (Buffer | undefined)[];
  readonly keys: (Buffer | undefined)[];

  constructor(readonly size = CHAIN_RING_SIZE) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`chain ring size must be a positive integer, not ${size}`);
    this.owners = new Float64Array(size);
    this.states = new Array<Buffer | undefined>(size).fill(undefined);
    this.keys = new Array<Buffer | undefined>(size).fill(undefined);
  }

  /** Slot `slot`'s chain (its native state and record key) from now on. */
  set(slot: number, state: Buffer, key: Buffer): void {
    const i = slot % this.size;
    this.owners[i] = slot + 1;
    this.states[i] = state;
    this.keys[i] = key;
  }

  /** Forget slot `slot` (if its entry is still its own). */
  delete(slot: number): void {
    const i = slot % this.size;
    if (this.owners[i] !== slot + 1) return;
    this.owners[i] = 0;
    this.states[i] = undefined;
    this.keys[i] = undefined;
  }

  has(slot: number): boolean {
    return this.owners[slot % this.size] === slot + 1;
  }
}
