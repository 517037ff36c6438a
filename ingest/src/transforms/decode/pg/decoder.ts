/**
 * PostgreSQL frames → `query` events. One `DecoderState` per session, fed the session's frame
 * events in seq order; no I/O, deterministic (the event id derives from session id and seq, so a
 * re-decoded batch produces identical rows).
 *
 * Responses are matched to requests in order, as the server answers them: every frontend
 * message that expects a reply is queued in `pending`; backend messages complete the queue's head.
 *
 * Granularity (decision): ONE query event per simple `Query` message — a multi-statement string
 * yields one event with the full text, `command_tag` = the CommandComplete tags joined by "; ",
 * `rows` summed over the statements — and ONE per extended `Execute`. The event's key is the seq
 * of the frame that carried the statement, so one event per request frame keeps (session_id, seq)
 * unique, which is what the ReplacingMergeTree `queries` table deduplicates on.
 *
 * A failed Parse or Bind (ErrorResponse while it heads the queue) also yields an event, keyed by
 * that frame's seq and carrying the statement text and error: a rejected statement is audit data.
 * Requests the server skipped after an error (everything up to Sync) yield nothing — they never ran.
 *
 * State restored mid-session (ingest restarted from a committed offset inside a query): responses
 * with nothing pending are counted as `orphans` and dropped; ReadyForQuery resynchronises; a Bind
 * or Execute naming a statement parsed before the restart point decodes with statement text ''.
 */
import { createHash } from 'node:crypto';
import type { QueryEvent } from '@vigil/schemas';
import {
  Backend,
  Frontend,
  bodyOf,
  dataRowBytes,
  dataRowValues,
  parseBind,
  parseCommandComplete,
  parseErrorResponse,
  parseExecute,
  parseParse,
  parseQuery,
  parseRowDescription,
  parseTarget,
  rowsFromTag,
} from './messages.ts';

/** What the decoder needs of a `frame` event. */
export interface PgFrame {
  seq: number;
  time: number;
  direction: 'c2s' | 's2c';
  msg_type?: string;
  data: Uint8Array;
}

/** Result accumulated for an in-flight statement. */
interface Acc {
  tags: string[];
  rows: number;
  /** DataRows of the current statement (a tag with a count replaces them). */
  stmt_rows: number;
  bytes: number;
  sqlstate?: string;
  error?: string;
  end_seq?: number;
  end_time?: number;
  /** Result preview: the first result's column names and first rows (PreviewOptions). */
  columns?: string[];
  formats?: number[];
  types?: number[];
  preview?: (string | null)[][];
  /** The result the preview came from has completed. */
  preview_closed?: boolean;
}

/**
 * Result previews (issue 3 item 6): the first `rows` DataRows of each statement's first result,
 * as the s2c frames hold them — i.e. as the client received them, masked inline by the gateway.
 * Ingest's mask transform runs the detectors over them again before they are stored. 0 disables.
 */
export interface PreviewOptions {
  rows: number;
  /** Longer values are cut (see dataRowValues). */
  value_bytes: number;
}

const NO_PREVIEW: PreviewOptions = { rows: 0, value_bytes: 0 };

/** A request awaiting its response, in the order the server will answer. */
type Pending =
  | { op: 'query'; seq: number; time: number; text: string; acc: Acc } // simple Query, done at ReadyForQuery
  | { op: 'parse'; seq: number; time: number; name: string; text: string } // → ParseComplete
  | { op: 'bind'; seq: number; time: number; statement: string; text: string; known: boolean; params: (string | null)[] } // → BindComplete
  | { op: 'describe' } // → [ParameterDescription] RowDescription | NoData
  | { op: 'close' } // → CloseComplete
  | { op: 'execute'; seq: number; time: number; statement: string; text: string; known: boolean; params: (string | null)[]; acc: Acc } // → CommandComplete | EmptyQuery | PortalSuspended
  | { op: 'sync' }; // → ReadyForQuery

/** Serializable (structuredClone-able) per-session decoder state. */
export interface DecoderState {
  /** Prepared statements by name ('' = unnamed), as the client defined them. */
  statements: Record<string, string>;
  /** Bound portals by name. */
  portals: Record<string, { statement: string; text: string; known: boolean; params: (string | null)[] }>;
  pending: Pending[];
  /** Inside a COPY sub-protocol. */
  copy: 'none' | 'in' | 'out';
}

export interface DecodeCounters {
  /** Backend responses with no matching request (e.g. after a mid-session restart). */
  orphans: number;
  /** Frames whose type the decoder does not act on (startup, notices, notifications, …). */
  ignored: number;
}

/**
 * A decoded statement. `statement_known` is false when the request that defined the statement
 * (Parse) preceded the point the decoder started from (restart mid-session): the text is then ''.
 * The sink stores it as the `queries` row version, so such a partial re-decode never replaces a
 * complete row of the same (session_id, seq).
 */
export interface Decoded {
  query: QueryEvent;
  statement_known: boolean;
  /** Present when previews are on and the statement returned rows. */
  preview?: { columns: string[]; rows: (string | null)[][] };
}

export function newDecoderState(): DecoderState {
  return { statements: {}, portals: {}, pending: [], copy: 'none' };
}

const newAcc = (): Acc => ({ tags: [], rows: 0, stmt_rows: 0, bytes: 0 });

/** Deterministic event id (UUID layout) for the query event keyed by (session, seq). */
export function queryEventId(sessionId: string, seq: number): string {
  const h = createHash('sha256').update(`query\0${sessionId}\0${seq}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function event(
  sessionId: string,
  kind: 'simple' | 'extended',
  req: { seq: number; time: number; text: string; known?: boolean; statement?: string; params?: (string | null)[] },
  acc: Acc,
  end: { seq: number; time: number },
): Decoded {
  const q: QueryEvent = {
    type: 'query',
    version: 1,
    event_id: queryEventId(sessionId, req.seq),
    session_id: sessionId,
    seq: req.seq,
    end_seq: end.seq,
    time: req.time,
    duration_us: Math.max(0, end.time - req.time),
    protocol_kind: kind,
    statement: req.text,
    params: req.params ?? [],
    rows: acc.rows,
    bytes: acc.bytes,
  };
  if (req.statement !== undefined) q.statement_name = req.statement;
  if (acc.tags.length > 0) q.command_tag = acc.tags.join('; ');
  if (acc.sqlstate !== undefined) q.sqlstate = acc.sqlstate;
  if (acc.error !== undefined) q.error = acc.error;
  const d: Decoded = { query: q, statement_known: req.known ?? true };
  if (acc.preview && acc.preview.length > 0) d.preview = { columns: acc.columns ?? [], rows: acc.preview };
  return d;
}

/**
 * Fold one frame into `state` (mutated) and return the statements it completes.
 * Throws `PgMessageError` on a malformed message; the caller resets the session's state.
 */
export function decodeFrame(state: DecoderState, sessionId: string, frame: PgFrame, counters: DecodeCounters, preview: PreviewOptions = NO_PREVIEW): Decoded[] {
  const type = frame.msg_type;
  if (type === undefined || type.length !== 1) {
    counters.ignored++; // Startup, SSLRequest, CancelRequest, password exchange without a letter…
    return [];
  }
  return frame.direction === 'c2s' ? frontend(state, type, frame, counters) : backend(state, sessionId, type, frame, counters, preview);
}

function frontend(state: DecoderState, type: string, f: PgFrame, counters: DecodeCounters): Decoded[] {
  const at = { seq: f.seq, time: f.time };
  switch (type) {
    case Frontend.Query:
      state.pending.push({ op: 'query', ...at, text: parseQuery(bodyOf(type, f.data)), acc: newAcc() });
      break;
    case Frontend.Parse: {
      const p = parseParse(bodyOf(type, f.data));
      state.statements[p.name] = p.text;
      state.pending.push({ op: 'parse', ...at, name: p.name, text: p.text });
      break;
    }
    case Frontend.Bind: {
      const b = parseBind(bodyOf(type, f.data));
      const known = b.statement in state.statements;
      const text = state.statements[b.statement] ?? '';
      state.portals[b.portal] = { statement: b.statement, text, known, params: b.params };
      state.pending.push({ op: 'bind', ...at, statement: b.statement, text, known, params: b.params });
      break;
    }
    case Frontend.Execute: {
      const { portal } = parseExecute(bodyOf(type, f.data));
      const p = state.portals[portal] ?? { statement: '', text: '', known: false, params: [] };
      state.pending.push({ op: 'execute', ...at, statement: p.statement, text: p.text, known: p.known, params: p.params, acc: newAcc() });
      break;
    }
    case Frontend.Describe:
      parseTarget(bodyOf(type, f.data));
      state.pending.push({ op: 'describe' });
      break;
    case Frontend.Close: {
      const t = parseTarget(bodyOf(type, f.data));
      if (t.kind === 'S') delete state.statements[t.name];
      else delete state.portals[t.name];
      state.pending.push({ op: 'close' });
      break;
    }
    case Frontend.Sync:
      state.pending.push({ op: 'sync' });
      break;
    case Frontend.CopyData: {
      const acc = current(state);
      if (state.copy === 'in' && acc) acc.bytes += bodyOf(type, f.data).length;
      break;
    }
    case Frontend.Flush:
    case Frontend.CopyDone:
    case Frontend.CopyFail: // the server answers with ErrorResponse
    case Frontend.Terminate:
      break;
    default:
      counters.ignored++;
  }
  return [];
}

/** The accumulator of the statement the server is currently answering, if any. */
function current(state: DecoderState): Acc | undefined {
  const head = state.pending[0];
  return head && (head.op === 'query' || head.op === 'execute') ? head.acc : undefined;
}

function complete(acc: Acc, f: PgFrame): void {
  acc.end_seq = f.seq;
  acc.end_time = f.time;
}

function backend(state: DecoderState, sessionId: string, type: string, f: PgFrame, counters: DecodeCounters, preview: PreviewOptions): Decoded[] {
  const head = state.pending[0];
  const end = { seq: f.seq, time: f.time };
  const shiftIf = (op: Pending['op']): boolean => {
    if (head?.op !== op) {
      counters.orphans++;
      return false;
    }
    state.pending.shift();
    return true;
  };
  switch (type) {
    case Backend.ParseComplete:
      shiftIf('parse');
      return [];
    case Backend.BindComplete:
      shiftIf('bind');
      return [];
    case Backend.CloseComplete:
      shiftIf('close');
      return [];
    case Backend.RowDescription:
    case Backend.NoData: {
      // Reply to Describe; a RowDescription heading a statement's result rows completes nothing.
      let acc: Acc | undefined;
      if (head?.op === 'describe') {
        state.pending.shift();
        // Describe(portal) answers for the Execute that follows it in the same pipeline.
        const next = state.pending.find((p) => p.op === 'execute' || p.op === 'sync');
        acc = next?.op === 'execute' ? next.acc : undefined;
      } else if (!(acc = current(state))) counters.orphans++;
      if (preview.rows > 0 && acc && type === Backend.RowDescription && acc.preview === undefined) {
        const d = parseRowDescription(bodyOf(type, f.data));
        acc.columns = d.names;
        acc.formats = d.formats;
        acc.types = d.types;
      }
      return [];
    }
    case Backend.ParameterDescription:
      return [];
    case Backend.DataRow: {
      const acc = current(state);
      if (!acc) {
        counters.orphans++;
        return [];
      }
      acc.stmt_rows++;
      const body = bodyOf(type, f.data);
      acc.bytes += dataRowBytes(body);
      // The first result with rows only: a later statement of a multi-statement query has other columns.
      if (preview.rows > 0 && !acc.preview_closed && (acc.preview?.length ?? 0) < preview.rows) {
        (acc.preview ??= []).push(dataRowValues(body, preview.value_bytes, acc.formats, acc.types));
      }
      return [];
    }
    case Backend.CopyData: {
      const acc = current(state);
      if (acc) acc.bytes += bodyOf(type, f.data).length;
      else counters.orphans++;
      return [];
    }
    case Backend.CopyInResponse:
      state.copy = 'in';
      return [];
    case Backend.CopyOutResponse:
    case Backend.CopyBothResponse:
      state.copy = 'out';
      return [];
    case Backend.CopyDone:
      return [];
    case Backend.CommandComplete:
    case Backend.EmptyQueryResponse:
    case Backend.PortalSuspended: {
      state.copy = 'none';
      const acc = current(state);
      if (!acc || !head) {
        counters.orphans++;
        return [];
      }
      if (type === Backend.CommandComplete) {
        const tag = parseCommandComplete(bodyOf(type, f.data));
        acc.tags.push(tag);
        acc.rows += rowsFromTag(tag) ?? acc.stmt_rows;
      } else {
        acc.rows += acc.stmt_rows;
      }
      acc.stmt_rows = 0;
      if (acc.preview) acc.preview_closed = true;
      complete(acc, f);
      if (head.op !== 'execute') return []; // a simple Query ends at ReadyForQuery
      state.pending.shift();
      return [event(sessionId, 'extended', head, acc, end)];
    }
    case Backend.ErrorResponse:
      return error(state, sessionId, f, counters);
    case Backend.ReadyForQuery: {
      state.copy = 'none';
      // Completes the first Sync or simple Query queued; anything before it was never answered
      // (state restored mid-session) and is dropped.
      const i = state.pending.findIndex((p) => p.op === 'sync' || p.op === 'query');
      if (i < 0) {
        state.pending.length = 0;
        return [];
      }
      const [done] = state.pending.splice(0, i + 1).slice(-1);
      if (done?.op !== 'query') return [];
      const acc = done.acc;
      acc.rows += acc.stmt_rows;
      acc.stmt_rows = 0;
      return [event(sessionId, 'simple', done, acc, acc.end_seq === undefined ? end : { seq: acc.end_seq, time: acc.end_time! })];
    }
    default:
      // NotificationResponse, NoticeResponse, ParameterStatus, BackendKeyData, Authentication…
      counters.ignored++;
      return [];
  }
}

function error(state: DecoderState, sessionId: string, f: PgFrame, counters: DecodeCounters): Decoded[] {
  state.copy = 'none';
  const fields = parseErrorResponse(bodyOf(Backend.ErrorResponse, f.data));
  const head = state.pending[0];
  const end = { seq: f.seq, time: f.time };
  if (!head || head.op === 'sync') {
    counters.orphans++; // e.g. FATAL on shutdown, or an error at Sync (deferred commit failure)
    return [];
  }
  if (head.op === 'query') {
    // The server abandons the rest of the string; the event is emitted at ReadyForQuery.
    head.acc.sqlstate ??= fields.sqlstate;
    head.acc.error ??= fields.message;
    head.acc.rows += head.acc.stmt_rows;
    head.acc.stmt_rows = 0;
    complete(head.acc, f);
    return [];
  }
  // Extended protocol: the server discards messages up to the next Sync.
  const out: Decoded[] = [];
  const failed = { sqlstate: fields.sqlstate, error: fields.message };
  if (head.op === 'execute') {
    head.acc.rows += head.acc.stmt_rows;
    out.push(event(sessionId, 'extended', head, { ...head.acc, ...failed }, end));
  } else if (head.op === 'parse') {
    out.push(event(sessionId, 'extended', { ...head, statement: head.name }, { ...newAcc(), ...failed }, end));
  } else if (head.op === 'bind') {
    out.push(event(sessionId, 'extended', head, { ...newAcc(), ...failed }, end));
  }
  while (state.pending.length > 0 && state.pending[0]!.op !== 'sync') state.pending.shift();
  return out;
}

/**
 * The session ended: statements still in flight (sent, never answered) become events with an
 * error saying so — a statement the target may have run is never silently dropped.
 */
export function finishSession(state: DecoderState, sessionId: string, end: { seq: number; time: number }): Decoded[] {
  const out: Decoded[] = [];
  for (const p of state.pending) {
    if (p.op !== 'query' && p.op !== 'execute') continue;
    const acc = { ...p.acc, rows: p.acc.rows + p.acc.stmt_rows, error: p.acc.error ?? 'session ended before the statement completed' };
    out.push(event(sessionId, p.op === 'query' ? 'simple' : 'extended', p, acc, end));
  }
  state.pending.length = 0;
  return out;
}
