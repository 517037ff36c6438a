/**
 * The ingest pipeline: source batch → per-session decode → rows → ClickHouse sink.
 *
 * Per-session state (identity from `session.started`, PostgreSQL decoder state, last folded seq)
 * lives between log batches, because a statement's request and response can straddle batches.
 *
 * Redelivery. A batch is redelivered when its handler rejected (store down past retry_max_ms,
 * schema error) or when the log could not commit an offset after success.
 *  - Rejected: every touched session's state is restored from a snapshot taken before the batch
 *    (structuredClone, lazily per session), so the redelivered batch decodes exactly as the first time.
 *  - Already folded (seq <= last_seq): its rows are written again (identical, they collapse in the
 *    ReplacingMergeTree) but the event is not fed to the decoder a second time.
 *
 * Restart mid-session (process died; the log resumes at the last committed offset; in-memory
 * state is gone). Decision: identity is read back from the `sessions` table (FINAL) for every
 * session whose first event in the batch is not `session.started`; if no row exists, identity is
 * taken from the event envelope (frames carry none: empty sub/target). The decoder starts empty:
 * responses without a request are counted as orphans; statements prepared before the restart
 * point decode with text '' and `statement_known = 0`, which never replaces a complete row.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { ChainedEvent } from '@vigil/schemas';
import type { IngestConfig } from './config.ts';
import type { Logger } from './errors.ts';
import { withRetry } from './sinks/clickhouse/retry.ts';
import {
  emptyRowBatch,
  eventRow,
  infoFromEnvelope,
  infoFromRow,
  infoFromStarted,
  queryRow,
  sessionEndRow,
  sessionStartRow,
  type RowBatch,
  type SessionInfo,
} from './sinks/clickhouse/rows.ts';
import type { ClickHouseSink } from './sinks/clickhouse/sink.ts';
import type { SourceBatch } from './sources/log/source.ts';
import { decodeFrame, finishSession, newDecoderState, type DecodeCounters, type Decoded, type DecoderState } from './transforms/decode/pg/decoder.ts';
import { afterInsertFault } from './fault.ts';
import { TerminalTransform, type MaskSnapshot } from './transforms/terminal/terminal.ts';
import { NO_MASK } from '@vigil/gateway/mask/engine';
import type { AtRestMasker } from './transforms/mask/transform.ts';

interface SessionState {
  info: SessionInfo | undefined;
  decoder: DecoderState;
  /** seq of the last event folded into `decoder` (-1: none). */
  last_seq: number;
  ended: boolean;
}

export interface PipelineStats {
  events: number;
  frames: number;
  queries: number;
  sessions_started: number;
  sessions_ended: number;
  decode_errors: number;
  seq_gaps: number;
  orphans: number;
  ignored_messages: number;
  refolded_events: number;
  session_lookups: number;
  rollbacks: number;
  live_sessions: number;
}

export class Pipeline {
  private readonly sessions = new Map<string, SessionState>();
  /** SSH sessions: asciicast rows, screen snapshots, command lines (transforms/terminal/). */
  private readonly terminal = new TerminalTransform();
  readonly stats: PipelineStats = {
    events: 0, frames: 0, queries: 0, sessions_started: 0, sessions_ended: 0, decode_errors: 0, seq_gaps: 0,
    orphans: 0, ignored_messages: 0, refolded_events: 0, session_lookups: 0, rollbacks: 0, live_sessions: 0,
  };

  constructor(
    private readonly config: IngestConfig,
    private readonly store: ClickHouseClient,
    private readonly sink: ClickHouseSink,
    private readonly logger: Logger,
    /** Masking at rest (transforms/mask); absent: rows are stored as decoded (unit tests, benchmarks). */
    private readonly masker?: AtRestMasker,
    private readonly preview = { rows: 0, value_bytes: 0 },
    /** Stages after decode and before the store (detect, SIEM export): awaited, so they share the batch's acknowledgement. */
    private readonly stage?: (events: ChainedEvent[], rows: RowBatch) => Promise<void>,
  ) {}

  /** Handle one source batch; resolves once its rows are in ClickHouse. */
  async handle(batch: SourceBatch): Promise<void> {
    const snapshots = new Map<string, SessionState | undefined>();
    const held = new Map<string, MaskSnapshot | undefined>();
    try {
      await this.lookupUnknownSessions(batch.events);
      const rows = this.fold(batch.events, snapshots, held);
      await this.terminal.settle();
      if (this.stage) await this.stage(batch.events, rows);
      await this.sink.write(rows);
      afterInsertFault();
    } catch (err) {
      for (const [id, snap] of snapshots) {
        if (snap) this.sessions.set(id, snap);
        else this.sessions.delete(id);
      }
      // Terminal output held back by the stream maskers goes back to what it was before the batch.
      for (const [id, snap] of held) this.terminal.restoreMask(id, snap);
      if (snapshots.size > 0) this.stats.rollbacks++;
      this.stats.live_sessions = this.sessions.size;
      throw err;
    }
    for (const id of snapshots.keys()) if (this.sessions.get(id)?.ended) this.sessions.delete(id);
    this.stats.live_sessions = this.sessions.size;
  }

  /** Read identity back for sessions first met mid-stream (restart), one query per batch. */
  private async lookupUnknownSessions(events: ChainedEvent[]): Promise<void> {
    const unknown = new Set<string>();
    const seen = new Set<string>();
    for (const e of events) {
      if (seen.has(e.session_id)) continue;
      seen.add(e.session_id);
      if (!this.sessions.has(e.session_id) && e.type !== 'session.started') unknown.add(e.session_id);
    }
    if (unknown.size === 0) return;
    this.stats.session_lookups += unknown.size;
    const result = await withRetry(
      'read back sessions',
      async () => {
        const r = await this.store.query({
          query: 'SELECT * FROM sessions FINAL WHERE session_id IN {ids:Array(String)}',
          query_params: { ids: [...unknown] },
          format: 'JSONEachRow',
        });
        return r.json<Record<string, unknown>>();
      },
      { retry_backoff_ms: this.config.retry_backoff_ms, retry_max_ms: this.config.retry_max_ms },
    );
    for (const row of result) {
      const id = String(row.session_id);
      // Pre-seed: decoder empty, last_seq unknown (-1), ended rows are not resurrected as live.
      this.sessions.set(id, { info: infoFromRow(row), decoder: newDecoderState(), last_seq: -1, ended: false });
      unknown.delete(id);
    }
    this.stats.live_sessions = this.sessions.size;
  }

  /** Fold the batch's events into session state and build its rows. Synchronous: no I/O. */
  private fold(events: ChainedEvent[], snapshots: Map<string, SessionState | undefined>, held: Map<string, MaskSnapshot | undefined>): RowBatch {
    const rows = emptyRowBatch();
    const counters: DecodeCounters = { orphans: 0, ignored: 0 };
    for (const e of events) {
      if (!snapshots.has(e.session_id)) {
        const cur = this.sessions.get(e.session_id);
        snapshots.set(e.session_id, cur && structuredClone(cur));
        held.set(e.session_id, this.terminal.maskState(e.session_id));
      }
      let s = this.sessions.get(e.session_id);
      if (!s) {
        s = { info: undefined, decoder: newDecoderState(), last_seq: -1, ended: false };
        this.sessions.set(e.session_id, s);
      }
      this.stats.events++;
      const fresh = e.seq > s.last_seq;
      if (!fresh) this.stats.refolded_events++;
      else if (s.last_seq >= 0 && e.seq !== s.last_seq + 1) {
        this.stats.seq_gaps++;
        this.logger.warn({ code: 'ING_ERR_SEQ_GAP', session_id: e.session_id, seq: e.seq, expected: s.last_seq + 1 }, 'ING_ERR_SEQ_GAP: decoder reset');
        s.decoder = newDecoderState();
      }
      let decoded: Decoded[] = [];
      switch (e.type) {
        case 'session.started':
          s.info = infoFromStarted(e);
          rows.sessions.push(sessionStartRow(e, s.info));
          if (fresh) this.stats.sessions_started++;
          break;
        case 'session.ended':
          s.info ??= infoFromEnvelope(e, Math.max(0, e.time - e.duration_us));
          rows.sessions.push(sessionEndRow(e, s.info));
          if (fresh) {
            decoded = finishSession(s.decoder, e.session_id, { seq: e.seq, time: e.time });
            this.stats.sessions_ended++;
          }
          s.ended = true;
          break;
        case 'frame':
          this.stats.frames++;
          if (fresh && (s.info?.protocol ?? 'postgres') === 'postgres') decoded = this.decode(s, e, counters);
          break;
        default:
          break;
      }
      if (
        s.info?.protocol === 'ssh' || e.type.startsWith('ssh.') || (e.type === 'frame' && /^(SSH_MSG_|VIGIL_)/.test(e.msg_type ?? '')) ||
        (e.type === 'policy.blocked' && e.protocol_kind.startsWith('ssh_'))
      ) {
        // Terminal text passes the detectors of the session's mask rules (transforms/terminal/mask.ts).
        const plan = this.masker ? this.masker.textPlan(s.info, e.time) : NO_MASK;
        this.terminal.fold(e, { sub: s.info?.sub ?? '', target_id: s.info?.target_id ?? '' }, rows, plan);
      }
      rows.events.push(eventRow(this.masker ? this.masker.event(e, s.info) : e, s.info));
      for (const d of decoded) {
        const m = this.masker ? this.masker.query(d.query, d.preview, s.info, d.statement_known) : d;
        rows.queries.push(queryRow(m.query, s.info, d.statement_known, m.preview));
      }
      this.stats.queries += decoded.length;
      if (fresh) s.last_seq = e.seq;
    }
    this.stats.orphans += counters.orphans;
    this.stats.ignored_messages += counters.ignored;
    return rows;
  }

  private decode(s: SessionState, e: Extract<ChainedEvent, { type: 'frame' }>, counters: DecodeCounters): Decoded[] {
    // Identity unknown (no start seen, no sessions row): decode anyway — non-PostgreSQL frames have
    // multi-letter msg_types and are ignored; a malformed message only resets this session.
    try {
      return decodeFrame(s.decoder, e.session_id, e, counters, this.preview);
    } catch (err) {
      this.stats.decode_errors++;
      s.decoder = newDecoderState();
      const fields: Record<string, unknown> = { code: 'ING_ERR_DECODE', session_id: e.session_id, seq: e.seq, msg_type: e.msg_type, direction: e.direction, err: (err as Error).message };
      if (this.config.debug_payloads) fields.data_hex = Buffer.from(e.data).toString('hex');
      this.logger.warn(fields, 'ING_ERR_DECODE: session decoder reset');
      return [];
    }
  }
}
