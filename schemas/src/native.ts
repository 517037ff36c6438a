/**
 * The native frame sealer (schemas/native/seal_frame.c), when it is built and current: the same
 * bytes as codec.ts sealFrame() at a fraction of the cost (no header string, no hex digest, no
 * Buffer per frame; the gateway seals every protocol message, so this is its hottest path).
 *
 * It is optional. `npm install` builds it (schemas/native/build.mjs, needs a C compiler and the
 * node install's headers); without it, or with VIGIL_NATIVE=0, or when the source changed after
 * the build, the JS sealer is used and `nativeSealer.reason` says why. The two are held to the
 * same bytes by tests (schemas/src/native.test.ts).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeSealFrame {
  /** Returns the record's end offset in `out`, or minus its size when it does not fit. */
  sealFrame(out: Uint8Array, outOffset: number, chain: Uint8Array, s2c: number, msgTypePart: Uint8Array | undefined, time: number, data: Uint8Array): number;
  /**
   * Seal the consecutive FRAME ops of a recorder batch from `pos` into a record run from `runAt`
   * (seal_frame.c describes the layouts and where it stops); returns the first op not sealed and
   * fills `io` with [end of the records in run, records, value bytes, size needed when run was
   * full (-1: sealing failed, thrown)] — also when it throws after sealing some.
   */
  sealFrames(batch: Uint8Array, pos: number, end: number, run: Uint8Array, runAt: number, chains: NativeChains, io: Float64Array): number;
}

/**
 * Natively sealed chains by slot, for sealFrames: a ring of `owners.length` entries, the chain of
 * slot s at s % length when owners[s % length] === s + 1 (0: none).
 */
export interface NativeChains {
  readonly owners: Float64Array;
  readonly states: (Uint8Array | undefined)[];
  readonly keys: (Uint8Array | undefined)[];
}

export const NATIVE_SOURCE = fileURLToPath(new URL('../native/seal_frame.c', import.meta.url));
/**
 * The addon this process loads: the one `npm install` builds, or VIGIL_NATIVE_ADDON's (the
 * sanitizer test points it at an ASan/UBSan build: schemas/native/sanitized.test.ts).
 */
export const NATIVE_ADDON = process.env.VIGIL_NATIVE_ADDON || fileURLToPath(new URL('../native/build/vigil_seal.node', import.meta.url));
/** Written by build.mjs beside the addon: SHA-256 of the source it was built from. */
export const NATIVE_STAMP = `${NATIVE_ADDON}.source-sha256`;

export function sourceDigest(): string {
  return createHash('sha256').update(readFileSync(NATIVE_SOURCE)).digest('hex');
}

function load(): { addon?: NativeSealFrame; reason: string } {
  if (process.env.VIGIL_NATIVE === '0') return { reason: 'disabled (VIGIL_NATIVE=0)' };
  let stamp: string;
  try {
    stamp = readFileSync(NATIVE_STAMP, 'utf8').trim();
  } catch {
    return { reason: 'not built (npm run build:native; needs a C compiler)' };
  }
  try {
    if (stamp !== sourceDigest()) return { reason: 'built from an older seal_frame.c (npm run build:native)' };
    const addon = createRequire(import.meta.url)(NATIVE_ADDON) as NativeSealFrame;
    if (typeof addon.sealFrame !== 'function' || typeof addon.sealFrames !== 'function') return { reason: 'the addon lacks sealFrame or sealFrames' };
    return { addon, reason: 'loaded' };
  } catch (err) {
    return { reason: `failed to load: ${(err as Error).message}` };
  }
}

/** Which sealer this process uses, and why (logged at start, exported in /metrics). */
export const nativeSealer: { readonly addon?: NativeSealFrame; readonly reason: string } = load();

// Chain state, as seal_frame.c reads it (CHAIN_* there).
const CHAIN_SEQ = 32;
const CHAIN_GW_LEN = 40;
const CHAIN_SESS_LEN = 42;
const CHAIN_PARTS = 44;

/**
 * A chain's state for the native sealer: the genesis hash, seq 0 and the session's constant
 * header fragments, or undefined when a fragment is too long for its u16 length (the JS sealer
 * then seals this chain).
 */
export function nativeChainState(gatewayPart: string, sessionPart: string): Buffer | undefined {
  const gw = Buffer.from(gatewayPart, 'utf8');
  const sess = Buffer.from(sessionPart, 'utf8');
  if (gw.length > 0xffff || sess.length > 0xffff) return undefined;
  const state = Buffer.alloc(CHAIN_PARTS + gw.length + sess.length); // zeros = GENESIS_HASH
  state.writeDoubleLE(0, CHAIN_SEQ);
  state.writeUInt16LE(gw.length, CHAIN_GW_LEN);
  state.writeUInt16LE(sess.length, CHAIN_SESS_LEN);
  gw.copy(state, CHAIN_PARTS);
  sess.copy(state, CHAIN_PARTS + gw.length);
  return state;
}

export function chainSeq(state: Buffer): number {
  return state.readDoubleLE(CHAIN_SEQ);
}

/** After a JS-sealed event (not a frame) of a native chain: its hash becomes the chain's head. */
export function advanceChain(state: Buffer, hash: string, nextSeq: number): void {
  state.write(hash, 0, 32, 'hex');
  state.writeDoubleLE(nextSeq, CHAIN_SEQ);
}

/**
 * Where SessionChain.frame() writes natively sealed records: slabs of SLAB_BYTES, each record a
 * view into one, so a frame costs no allocation beyond its view; a full slab is left to the
 * collector once its records are. (The gateway's recorder does not come here: it seals in place,
 * into its record runs — SessionChain.sealFrameInto.)
 */
const SLAB_BYTES = 256 * 1024;

export class FrameSlabs {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;

  seal(addon: NativeSealFrame, state: Buffer, s2c: boolean, msgTypePart: Buffer | undefined, time: number, data: Uint8Array): Buffer {
    const dir = s2c ? 1 : 0;
    let end = addon.sealFrame(this.slab, this.used, state, dir, msgTypePart, time, data);
    if (end < 0) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, -end));
      this.used = 0;
      end = addon.sealFrame(this.slab, 0, state, dir, msgTypePart, time, data);
    }
    const bytes = this.slab.subarray(this.used, end);
    this.used = end;
    return bytes;
  }
}

/** Per thread. */
export const frameSlabs = new FrameSlabs();
