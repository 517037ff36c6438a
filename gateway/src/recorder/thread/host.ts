/**
 * The recorder thread's side: reads the socket thread's batches (wire.ts) in order, seals each
 * frame and event into its session's hash chain and appends it to an EventSink — the same
 * sealing code and the same sink (batching, retries, pressure, fail-closed) as in-thread
 * recording, so the log holds the same bytes either way.
 */
import type { MessagePort } from 'node:worker_threads';
import { SessionChain } from '@vigil/schemas';
import type { EventSink } from '../sink.ts';
import { OP_CLOSE, OP_EVENT, OP_FRAME, OP_OPEN, readBatch } from './wire.ts';
import type { FromRecorder, ToRecorder } from './protocol.ts';

interface OpenChain {
  sessionId: string;
  chain: SessionChain;
}

export interface RecorderHost {
  /** Chains open now (sessions not yet ended, plus their grace period). */
  readonly openChains: number;
  close(): void;
}

export function serveRecorder(port: MessagePort, sink: EventSink, log: { error(o: object, msg: string): void }): RecorderHost {
  const chains = new Map<number, OpenChain>();
  const post = (m: FromRecorder) => port.postMessage(m);
  const onPressure = (on: boolean) => post({ op: 'pressure', on });
  const onFailure = (err: Error) => post({ op: 'failure', error: { code: (err as { code?: string }).code, message: err.message } });
  sink.on('pressure', onPressure);
  sink.on('failure', onFailure);
  if (sink.failure) onFailure(sink.failure);

  port.on('message', (m: ToRecorder) => {
    if (m.op === 'drain') {
      void sink.drain().finally(() => post({ op: 'drained', id: m.id }));
      return;
    }
    try {
      for (const op of readBatch(m)) {
        switch (op.op) {
          case OP_OPEN:
            chains.set(op.slot, { sessionId: op.sessionId, chain: new SessionChain(op.sessionId, op.gateway) });
            break;
          case OP_FRAME: {
            const c = chains.get(op.slot);
            if (!c) throw new Error(`frame for unknown chain slot ${op.slot}`);
            sink.append(c.sessionId, c.chain.frame(op.direction, op.msgType, op.data, op.time).bytes);
            break;
          }
          case OP_EVENT: {
            const c = chains.get(op.slot);
            if (!c) throw new Error(`event ${op.input.type} for unknown chain slot ${op.slot}`);
            const record = c.chain.next(op.input);
            sink.append(c.sessionId, record.bytes, { type: op.input.type });
            if (op.reply !== undefined) post({ op: 'sealed', reply: op.reply, seq: record.seq, hash: record.hash, bytes: record.bytes });
            break;
          }
          case OP_CLOSE:
            chains.delete(op.slot);
            break;
        }
      }
    } catch (err) {
      // Not reachable with a well-formed batch; if it happens the recording is incomplete, and
      // the gateway must know (fail-closed), not carry on as if it were whole.
      log.error({ err: (err as Error).message }, 'recorder batch could not be processed');
      post({ op: 'fault', error: { code: 'GW_ERR_RECORDER', message: (err as Error).message } });
    }
    post({ op: 'processed', id: m.id, bytes: m.length });
  });

  return {
    get openChains() {
      return chains.size;
    },
    close() {
      sink.off('pressure', onPressure);
      sink.off('failure', onFailure);
      port.removeAllListeners('message');
    },
  };
}
