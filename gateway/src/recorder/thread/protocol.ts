/** Messages between the socket thread's RecorderLink and the recorder thread's host. */
import type { WireBatch } from './wire.ts';

export interface ErrorInfo {
  code?: string;
  message: string;
}

export type ToRecorder =
  | ({ op: 'batch'; id: number } & WireBatch)
  /** Answer `drained` once everything sent before it is durable (or failed for good). */
  | { op: 'drain'; id: number };

export type FromRecorder =
  /**
   * Batch `id` was sealed and handed to the sink (its bytes no longer count as in flight here).
   * `buffer` is the batch's buffer, transferred back for reuse (nothing refers to it any more).
   */
  | { op: 'processed'; id: number; bytes: number; buffer?: ArrayBuffer }
  | { op: 'pressure'; on: boolean }
  | { op: 'failure'; error: ErrorInfo }
  | { op: 'drained'; id: number }
  /** The sealed record of an event recorded with a reply id. */
  | { op: 'sealed'; reply: number; seq: number; hash: string; bytes: Uint8Array }
  /** An event recorded with a reply id could not be recorded (its chain is no longer known). */
  | { op: 'sealed_error'; reply: number; error: ErrorInfo }
  /** The host could not process a batch (a bug or corrupt batch): recorded events may be missing. */
  | { op: 'fault'; error: ErrorInfo };
