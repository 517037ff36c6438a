/**
 * Row shapes of the ClickHouse tables (deploy/clickhouse/001_tables.sql) and pure mappings from
 * events to rows. Times are written as 'YYYY-MM-DD hh:mm:ss.ffffff' UTC strings: exact for
 * DateTime64(6) on both chDB and the server (a bare number would be read with another scale).
 */
import { emptyTerminalRows, type TerminalRows } from '../../transforms/terminal/terminal.ts';
import type { ChainedEvent, QueryEvent, SessionEnded, SessionStarted } from '@vigil/schemas';

/** Identity and target of a session, from `session.started` (or read back from `sessions`). */
export interface SessionInfo {
  started_at: number; // µs
  sub: string;
  groups: string[];
  issuer: string;
  actor_kind: string;
  client_addr: string;
  client_app: string;
  target_id: string;
  protocol: string;
  target_addr: string;
  db_name: string;
  db_user: string;
  gateway_id: string;
  tls: boolean;
  upstream_tls: boolean;
}

export interface SessionRow extends Omit<SessionInfo, 'started_at'> {
  session_id: string;
  version: number;
  started_at: string;
  ended_at: string | null;
  end_reason: string;
  end_detail: string;
  duration_us: number;
  bytes_c2s: number;
  bytes_s2c: number;
  messages_c2s: number;
  messages_s2c: number;
  last_hash: string;
}

export interface EventRow {
  session_id: string;
  seq: number;
  event_id: string;
  type: string;
  time: string;
  sub: string;
  target_id: string;
  direction: string;
  msg_type: string;
  size: number;
  prev_hash: string;
  hash: string;
  detail: string;
}

export interface QueryRow {
  session_id: string;
  seq: number;
  end_seq: number;
  event_id: string;
  time: string;
  duration_us: number;
  sub: string;
  target_id: string;
  protocol_kind: string;
  statement: string;
  statement_name: string;
  params: (string | null)[];
  command_tag: string;
  rows: number;
  bytes: number;
  sqlstate: string;
  error: string;
  /** 1 = complete decode; 0 = statement text unknown (restart mid-session). Row version. */
  statement_known: number;
  /** Result preview (002_queries_preview.sql): column names and the first rows, masked at rest. */
  preview_columns: string[];
  preview_rows: (string | null)[][];
}

export interface RowBatch extends TerminalRows {
  sessions: SessionRow[];
  events: EventRow[];
  queries: QueryRow[];
}

export const emptyRowBatch = (): RowBatch => ({ sessions: [], events: [], queries: [], ...emptyTerminalRows() });
export const rowCount = (b: RowBatch): number =>
  b.sessions.length + b.events.length + b.queries.length + b.terminal.length + b.terminal_snapshots.length + b.commands.length;

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** µs since epoch → ClickHouse DateTime64(6) text, UTC. */
export function chTime(us: number): string {
  const ms = Math.floor(us / 1000);
  const d = new Date(ms);
  const frac = us - Math.floor(us / 1_000_000) * 1_000_000;
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(frac, 6)}`;
}

/** ClickHouse DateTime64(6) text (UTC) → µs since epoch. */
export function parseChTime(text: string): number {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?$/.exec(text);
  if (!m) return 0;
  return Date.parse(`${m[1]}T${m[2]}Z`) * 1000 + Number((m[3] ?? '').padEnd(6, '0'));
}

/** Members every event carries (envelope); the rest of a non-frame event goes to `detail`. */
const ENVELOPE = new Set([
  'type', 'version', 'event_id', 'time', 'session_id', 'seq', 'prev_hash', 'hash',
  'sub', 'groups', 'issuer', 'actor_kind', 'client_addr',
  'target_id', 'protocol', 'target_addr', 'db_name', 'db_user', 'login',
  'gateway_id', 'gateway_version',
]);

export function infoFromStarted(e: SessionStarted): SessionInfo {
  return {
    started_at: e.time,
    sub: e.sub ?? '',
    groups: e.groups ?? [],
    issuer: e.issuer ?? '',
    actor_kind: e.actor_kind ?? '',
    client_addr: e.client_addr ?? '',
    client_app: e.client_app ?? '',
    target_id: e.target_id ?? '',
    protocol: e.protocol ?? '',
    target_addr: e.target_addr ?? '',
    db_name: e.db_name ?? '',
    db_user: e.db_user ?? e.login ?? '',
    gateway_id: e.gateway_id,
    tls: e.tls,
    upstream_tls: e.upstream_tls,
  };
}

/** Best-effort identity from any event's envelope (a session whose start was never seen). */
export function infoFromEnvelope(e: ChainedEvent, startedAt: number): SessionInfo {
  return {
    started_at: startedAt,
    sub: e.sub ?? '',
    groups: e.groups ?? [],
    issuer: e.issuer ?? '',
    actor_kind: e.actor_kind ?? '',
    client_addr: e.client_addr ?? '',
    client_app: '',
    target_id: e.target_id ?? '',
    protocol: e.protocol ?? '',
    target_addr: e.target_addr ?? '',
    db_name: e.db_name ?? '',
    db_user: e.db_user ?? e.login ?? '',
    gateway_id: e.gateway_id,
    tls: false,
    upstream_tls: false,
  };
}

export function sessionStartRow(e: SessionStarted, info: SessionInfo): SessionRow {
  const { started_at, ...rest } = info;
  return {
    session_id: e.session_id,
    version: e.seq,
    ...rest,
    started_at: chTime(started_at),
    ended_at: null,
    end_reason: '',
    end_detail: '',
    duration_us: 0,
    bytes_c2s: 0,
    bytes_s2c: 0,
    messages_c2s: 0,
    messages_s2c: 0,
    last_hash: e.hash,
  };
}

/** The final row of a session: the start's identity carried over, end facts folded in. */
export function sessionEndRow(e: SessionEnded, info: SessionInfo): SessionRow {
  const { started_at, ...rest } = info;
  return {
    session_id: e.session_id,
    version: e.seq,
    ...rest,
    started_at: chTime(started_at),
    ended_at: chTime(e.time),
    end_reason: e.reason,
    end_detail: e.detail ?? '',
    duration_us: e.duration_us,
    bytes_c2s: e.bytes_c2s,
    bytes_s2c: e.bytes_s2c,
    messages_c2s: e.messages_c2s,
    messages_s2c: e.messages_s2c,
    last_hash: e.hash,
  };
}

/** One `events` row: no payload bytes; `size` is the frame's data length. */
export function eventRow(e: ChainedEvent, info: SessionInfo | undefined): EventRow {
  let detail = '';
  if (e.type !== 'frame') {
    const rest: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) if (!ENVELOPE.has(k) && v !== undefined) rest[k] = v;
    detail = JSON.stringify(rest);
  }
  return {
    session_id: e.session_id,
    seq: e.seq,
    event_id: e.event_id,
    type: e.type,
    time: chTime(e.time),
    sub: e.sub ?? info?.sub ?? '',
    target_id: e.target_id ?? info?.target_id ?? '',
    direction: e.type === 'frame' || e.type === 'protocol.refused' ? (e.direction ?? '') : '',
    msg_type: e.type === 'frame' ? (e.msg_type ?? '') : '',
    size: e.type === 'frame' ? e.data.length : 0,
    prev_hash: e.prev_hash,
    hash: e.hash,
    detail,
  };
}

export function queryRow(q: QueryEvent, info: SessionInfo | undefined, statementKnown = true, preview?: { columns: string[]; rows: (string | null)[][] }): QueryRow {
  return {
    session_id: q.session_id,
    seq: q.seq,
    end_seq: q.end_seq,
    event_id: q.event_id,
    time: chTime(q.time),
    duration_us: q.duration_us,
    sub: info?.sub ?? '',
    target_id: info?.target_id ?? '',
    protocol_kind: q.protocol_kind,
    statement: q.statement,
    statement_name: q.statement_name ?? '',
    params: q.params,
    command_tag: q.command_tag ?? '',
    rows: q.rows,
    bytes: q.bytes,
    sqlstate: q.sqlstate ?? '',
    error: q.error ?? '',
    statement_known: statementKnown ? 1 : 0,
    preview_columns: preview?.columns ?? [],
    preview_rows: preview?.rows ?? [],
  };
}

/** Read-back of a `sessions` row (restart mid-session) into SessionInfo. */
export function infoFromRow(r: Record<string, unknown>): SessionInfo {
  const s = (k: string): string => (typeof r[k] === 'string' ? (r[k] as string) : '');
  return {
    started_at: parseChTime(s('started_at')),
    sub: s('sub'),
    groups: Array.isArray(r.groups) ? (r.groups as string[]) : [],
    issuer: s('issuer'),
    actor_kind: s('actor_kind'),
    client_addr: s('client_addr'),
    client_app: s('client_app'),
    target_id: s('target_id'),
    protocol: s('protocol'),
    target_addr: s('target_addr'),
    db_name: s('db_name'),
    db_user: s('db_user'),
    gateway_id: s('gateway_id'),
    tls: r.tls === true || r.tls === 1,
    upstream_tls: r.upstream_tls === true || r.upstream_tls === 1,
  };
}
