/**
 * The recorder thread's side: reads the socket thread's batches (wire.ts) in order, seals each
 * frame and event into its session's hash chain and appends it to an EventSink — the same
 * sealing code and the same sink (batching, retries, pressure, fail-closed) as in-thread
 * recording, so the log holds the same bytes either way.
 *
 * A closed chain (its session ended and the grace period passed) is retired, not forgotten: an
 * event that still arrives for it (a mask report from a catalog load that outlived the session,
 * say) is still sealed into it, in its place. Retired chains are kept up to RETIRED_MAX; an
 * op that cannot be applied is refused on its own (logged, counted, its reply rejected) and never
 * takes the rest of the batch with it.
 */
import type { MessagePort } from 'node:worker_threads';
import { SessionChain } from '@vigil/schemas';
import type { EventSink } from '../sink.ts';
import { BatchReader, OP_CLOSE, OP_EVENT, OP_FRAME, OP_OPEN } from './wire.ts';
import { ChainRing } from './chain-ring.ts';
import type { FromRecorder, ToRecorder } from './protocol.ts';

interface OpenChain {
  sessionId: string;
  /** `sessionId` as UTF-8: the key of every record of the chain. */
  key: Buffer;
  chain: SessionChain;
}

/** Retired chains kept for late events (~300 bytes each). */
const RETIRED_MAX = 100_000;

export interface RecorderHost {
  /** Chains open now (sessions not yet ended, plus their grace period). */
  readonly openChains: number;
  /** Ops refused (unknown or long-retired chain): each logged. */
  readonly refusedOps: number;
  close(): void;
}

export interface RecorderHostOptions {
  /** Entries of the native batch sealer's chain ring (tests make it small to wrap it). */
  chainRingSize?: number;
}

export function serveRecorder(port: MessagePort, sink: EventSink, log: { error(o: object, msg: string): void }, options: RecorderHostOptions = {}): RecorderHost {
  const chains = new Map<number, OpenChain>();
  const retired = new Map<number, OpenChain>();
  // For the native batch sealer (EventSink.appendFrames): the natively sealed chains (open or
  // retired) by slot; a slot not in it is sealed by the per-op path below.
  const ring = new ChainRing(options.chainRingSize);
  let refusedOps = 0;
  const post = (m: FromRecorder) => port.postMessage(m);
  const onPressure = (on: boolean) => post({ op: 'pressure', on });
  const onFailure = (err: Error) => post({ op: 'failure', error: { code: (err as { code?: string }).code, message: err.message } });
  sink.on('pressure', onPressure);
  sink.on('failure', onFailure);
  if (sink.failure) onFailure(sink.failure);

  const chainOf = (slot: number): OpenChain | undefined => chains.get(slot) ?? retired.get(slot);
  const refuse = (slot: number, what: string, reply?: number): void => {
    refusedOps++;
    log.error({ slot, what }, 'recorder: an event for a chain that is no longer known was not recorded');
    if (reply !== undefined) post({ op: 'sealed_error', reply, error: { code: 'GW_ERR_RECORDER', message: `${what}: chain no longer known` } });
  };

  port.on('message', (m: ToRecorder) => {
    if (m.op === 'drain') {
      void sink.drain().finally(() => post({ op: 'drained', id: m.id }));
      return;
    }
    try {
      const op = new BatchReader(m);
      const end = op.b.length;
      for (;;) {
        // Runs of frames go to the native batch sealer in one call; what it leaves, op by op here.
        if (op.b[op.position] === OP_FRAME) op.seek(sink.appendFrames(op.b, op.position, end, ring));
        if (!op.next()) break;
        switch (op.op) {
          case OP_FRAME: {
            const c = chainOf(op.slot);
            if (!c) refuse(op.slot, 'frame');
            else sink.appendFrame(c.sessionId, c.key, c.chain, op.direction, op.msgType, op.data, op.time);
            break;
          }
          case OP_OPEN: {
            const c = { sessionId: op.sessionId, key: Buffer.from(op.sessionId), chain: new SessionChain(op.sessionId, op.gateway) };
            chains.set(op.slot, c);
            const state = c.chain.nativeState;
            if (state) ring.set(op.slot, state, c.key);
            else ring.delete(op.slot);
            break;
          }
          case OP_EVENT: {
            const { input, reply } = op.event!;
            const c = chainOf(op.slot);
            if (!c) {
              refuse(op.slot, input.type, reply);
              break;
            }
            const record = c.chain.next(input);
            sink.append(c.sessionId, record.bytes, { type: input.type });
            if (reply !== undefined) post({ op: 'sealed', reply, seq: record.seq, hash: record.hash, bytes: record.bytes });
            break;
          }
          case OP_CLOSE: {
            const c = chains.get(op.slot);
            if (!c) break;
            chains.delete(op.slot);
            retired.set(op.slot, c);
            if (retired.size > RETIRED_MAX) {
              const gone = retired.keys().next().value!;
              retired.delete(gone);
              ring.delete(gone);
            }
            break;
          }
        }
      }
    } catch (err) {
      // Only a malformed batch (a bug) gets here: the recording is incomplete from this point,
      // and the gateway must know (fail-closed), not carry on as if it were whole.
      log.error({ err: (err as Error).message }, 'recorder batch could not be processed');
      post({ op: 'fault', error: { code: 'GW_ERR_RECORDER', message: (err as Error).message } });
    }
    // Every sealed record copied what it needed out of the batch, so its buffer goes back to the
    // socket thread for the next batch: no fresh ArrayBuffer per flush on either side.
    port.postMessage({ op: 'processed', id: m.id, bytes: m.length, buffer: m.buffer } satisfies FromRecorder, [m.buffer]);
  });

  return {
    get openChains() {
      return chains.size;
    },
    get refusedOps() {
      return refusedOps;
    },
    close() {
      sink.off('pressure', onPressure);
      sink.off('failure', onFailure);
      port.removeAllListeners('message');
    },
  };
}
