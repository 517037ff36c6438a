/**
 * Reads of sessions and queries from the analytics store. User input reaches SQL only through
 * `query_params` (typed server-side binding), never by concatenation. Tables are ReplacingMergeTree,
 * so reads use FINAL to see one row per key even before background merges.
 *
 * Pagination is keyset (started_at, session_id) descending: a cursor names the last row seen, so
 * sessions arriving while someone pages do not shift or duplicate later pages.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { apiError } from './errors.ts';
import type { Query, Session } from './schemas.ts';

/** µs since epoch → ISO-8601 with 6 fractional digits (Date only keeps ms). */
export function isoMicros(us: bigint): string {
  const ms = us / 1000n;
  const rest = Number(((us % 1000n) + 1000n) % 1000n);
  const base = new Date(Number(ms - (us < 0n && rest !== 0 ? 1n : 0n))).toISOString(); // …sss Z
  return `${base.slice(0, -1)}${String(rest).padStart(3, '0')}Z`;
}

/** A filter bound: integer µs since epoch, or ISO-8601 with up to 6 fractional digits. */
export function parseTimeParam(text: string, name: string): bigint {
  if (/^\d{1,17}$/.test(text)) return BigInt(text);
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/.exec(text);
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) {
    throw apiError('API_ERR_BAD_REQUEST', `${name}: expected ISO-8601 (e.g. 2026-01-02T03:04:05Z) or integer microseconds since the epoch`);
  }
  const frac = BigInt((m[2] ?? '').padEnd(6, '0').slice(0, 6));
  return BigInt(ms) * 1000n + frac;
}

interface Cursor {
  t: bigint;
  id: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify({ v: 1, t: c.t.toString(), id: c.id })).toString('base64url');
}

export function decodeCursor(text: string): Cursor {
  try {
    const o = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as { v?: unknown; t?: unknown; id?: unknown };
    if (o.v === 1 && typeof o.t === 'string' && /^\d{1,20}$/.test(o.t) && typeof o.id === 'string') return { t: BigInt(o.t), id: o.id };
  } catch {
    // fall through: any decoding failure is the caller's bad cursor
  }
  throw apiError('API_ERR_BAD_CURSOR', 'cursor is not one returned by this API');
}

// Aliases never reuse a column name: ClickHouse resolves aliases in WHERE / ORDER BY too, so
// `toString(seq) AS seq` would silently turn numeric filters and ordering into string ones.
// 64-bit integers arrive as JSON strings (output_format_json_quote_64bit_integers) and are
// converted below.
const SESSION_COLUMNS = `
  session_id,
  toUnixTimestamp64Micro(started_at) AS started_us,
  if(isNull(ended_at), '', toString(toUnixTimestamp64Micro(assumeNotNull(ended_at)))) AS ended_us,
  sub, groups, issuer, actor_kind, client_addr, client_app, target_id, protocol, target_addr,
  db_name, db_user, gateway_id, tls, upstream_tls, end_reason, end_detail,
  duration_us, bytes_c2s, bytes_s2c, messages_c2s, messages_s2c, last_hash`;

type SessionRow = Omit<Session, 'started_at' | 'ended_at' | 'duration_us' | 'bytes_c2s' | 'bytes_s2c' | 'messages_c2s' | 'messages_s2c' | 'tls' | 'upstream_tls'> & {
  started_us: string;
  ended_us: string;
  duration_us: string;
  bytes_c2s: string;
  bytes_s2c: string;
  messages_c2s: string;
  messages_s2c: string;
  tls: boolean | number;
  upstream_tls: boolean | number;
};

function toSession(r: SessionRow): Session {
  return {
    session_id: r.session_id,
    started_at: isoMicros(BigInt(r.started_us)),
    ended_at: r.ended_us === '' ? null : isoMicros(BigInt(r.ended_us)),
    sub: r.sub,
    groups: r.groups,
    issuer: r.issuer,
    actor_kind: r.actor_kind,
    client_addr: r.client_addr,
    client_app: r.client_app,
    target_id: r.target_id,
    protocol: r.protocol,
    target_addr: r.target_addr,
    db_name: r.db_name,
    db_user: r.db_user,
    gateway_id: r.gateway_id,
    tls: Boolean(r.tls),
    upstream_tls: Boolean(r.upstream_tls),
    end_reason: r.end_reason,
    end_detail: r.end_detail,
    duration_us: Number(r.duration_us),
    bytes_c2s: Number(r.bytes_c2s),
    bytes_s2c: Number(r.bytes_s2c),
    messages_c2s: Number(r.messages_c2s),
    messages_s2c: Number(r.messages_s2c),
    last_hash: r.last_hash,
  };
}

export interface SessionFilter {
  sub?: string;
  target_id?: string;
  protocol?: string;
  actor_kind?: 'agent' | 'human';
  live?: boolean;
  /** Sessions with (true) or without (false) a detection alert (the `alerts` table). */
  has_alerts?: boolean;
  /** Case-insensitive substring of a statement (`queries`) or command line (`commands`) the session ran. */
  q?: string;
  from_us?: bigint;
  to_us?: bigint;
}

export async function listSessions(
  store: ClickHouseClient,
  filter: SessionFilter,
  page: { limit: number; cursor?: string },
): Promise<{ items: Session[]; next_cursor: string | null }> {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: page.limit + 1 };
  if (filter.sub !== undefined) (where.push('sub = {sub:String}'), (params.sub = filter.sub));
  if (filter.target_id !== undefined) (where.push('target_id = {target_id:String}'), (params.target_id = filter.target_id));
  if (filter.protocol !== undefined) (where.push('protocol = {protocol:String}'), (params.protocol = filter.protocol));
  if (filter.actor_kind !== undefined) (where.push('actor_kind = {actor_kind:String}'), (params.actor_kind = filter.actor_kind));
  if (filter.live !== undefined) where.push(filter.live ? 'isNull(ended_at)' : 'isNotNull(ended_at)');
  if (filter.has_alerts !== undefined) where.push(`session_id ${filter.has_alerts ? '' : 'NOT '}IN (SELECT session_id FROM alerts)`);
  if (filter.q !== undefined) {
    // A substring, not a pattern: no LIKE metacharacters to escape, and the text is a bound value.
    // Databases answer from their statements, terminals from their command lines (exec and shell).
    // One set built from both tables (UNION ALL), not two IN sets joined by OR.
    where.push(`session_id IN (SELECT session_id FROM queries WHERE positionCaseInsensitiveUTF8(statement, {q:String}) > 0
                               UNION ALL SELECT session_id FROM commands WHERE positionCaseInsensitiveUTF8(line, {q:String}) > 0)`);
    params.q = filter.q;
  }
  if (filter.from_us !== undefined) (where.push('toUnixTimestamp64Micro(started_at) >= {from_us:Int64}'), (params.from_us = filter.from_us.toString()));
  if (filter.to_us !== undefined) (where.push('toUnixTimestamp64Micro(started_at) < {to_us:Int64}'), (params.to_us = filter.to_us.toString()));
  if (page.cursor !== undefined) {
    const c = decodeCursor(page.cursor);
    where.push('(toUnixTimestamp64Micro(started_at), session_id) < ({cursor_t:Int64}, {cursor_id:String})');
    params.cursor_t = c.t.toString();
    params.cursor_id = c.id;
  }
  // Only the fixed fragments above are concatenated; every value is a bound parameter.
  const query = `SELECT ${SESSION_COLUMNS} FROM sessions FINAL
    ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY started_at DESC, session_id DESC
    LIMIT {limit:UInt32}`;
  const rows = await (await store.query({ query, query_params: params, format: 'JSONEachRow' })).json<SessionRow>();
  const more = rows.length > page.limit;
  const pageRows = more ? rows.slice(0, page.limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return {
    items: pageRows.map(toSession),
    next_cursor: more && last ? encodeCursor({ t: BigInt(last.started_us), id: last.session_id }) : null,
  };
}

export async function getSession(store: ClickHouseClient, id: string): Promise<Session | undefined> {
  const rows = await (
    await store.query({
      query: `SELECT ${SESSION_COLUMNS} FROM sessions FINAL WHERE session_id = {id:String} LIMIT 1`,
      query_params: { id },
      format: 'JSONEachRow',
    })
  ).json<SessionRow>();
  return rows[0] ? toSession(rows[0]) : undefined;
}

type QueryRow = Omit<Query, 'seq' | 'end_seq' | 'time' | 'duration_us' | 'rows' | 'bytes' | 'statement_known' | 'verdict' | 'verdict_rule' | 'verdict_message' | 'masked' | 'preview'> & {
  statement_known: number | boolean;
  preview_columns?: string[];
  preview_rows?: (string | null)[][];
  seq: string;
  end_seq: string;
  time_us: string;
  duration_us: string;
  rows: string;
  bytes: string;
};

export async function listQueries(
  store: ClickHouseClient,
  sessionId: string,
  page: { after?: number; limit: number },
): Promise<{ queries: Query[]; next: number | null }> {
  const rows = await (
    await store.query({
      query: `SELECT seq, end_seq, event_id, toUnixTimestamp64Micro(time) AS time_us, duration_us,
          protocol_kind, statement, statement_name, statement_known, params, command_tag, rows, bytes, sqlstate, error,
          preview_columns, preview_rows
        FROM queries FINAL
        WHERE session_id = {id:String} AND seq > {after:Int64}
        ORDER BY seq ASC
        LIMIT {limit:UInt32}`,
      query_params: { id: sessionId, after: page.after ?? -1, limit: page.limit + 1 },
      format: 'JSONEachRow',
    })
  ).json<QueryRow>();
  const more = rows.length > page.limit;
  const pageRows = more ? rows.slice(0, page.limit) : rows;
  const queries = pageRows.map((r) => ({
    seq: Number(r.seq),
    end_seq: Number(r.end_seq),
    event_id: r.event_id,
    time: isoMicros(BigInt(r.time_us)),
    duration_us: Number(r.duration_us),
    protocol_kind: r.protocol_kind,
    statement: r.statement,
    statement_name: r.statement_name,
    statement_known: Boolean(Number(r.statement_known)),
    params: r.params,
    command_tag: r.command_tag,
    rows: Number(r.rows),
    bytes: Number(r.bytes),
    sqlstate: r.sqlstate,
    error: r.error,
    verdict: 'allowed' as Query['verdict'],
    verdict_rule: null as string | null,
    verdict_message: '',
    masked: false,
    preview: { columns: r.preview_columns ?? [], rows: r.preview_rows ?? [] },
  }));
  await attachVerdicts(store, sessionId, queries);
  return { queries, next: more && queries.length ? queries[queries.length - 1].seq : null };
}

interface VerdictRow {
  seq: string;
  type: 'policy.blocked' | 'approval.resolved' | 'mask.applied';
  detail: string;
}

/**
 * Mark what the gateway decided for each statement. The gateway writes `policy.blocked`,
 * `approval.requested`/`approval.resolved` and `mask.applied` into the chain between the c2s frame
 * that carried the statement and the end of its response, so they lie within that statement's frames
 * (seq..end_seq); one range query for the page, then a merge in seq order.
 */
async function attachVerdicts(store: ClickHouseClient, sessionId: string, queries: Query[]): Promise<void> {
  if (queries.length === 0) return;
  const lo = queries[0].seq;
  const hi = Math.max(...queries.map((q) => Math.max(q.seq, q.end_seq)));
  const rows = await (
    await store.query({
      query: `SELECT seq, type, detail
        FROM events FINAL
        WHERE session_id = {id:String} AND type IN ('policy.blocked', 'approval.resolved', 'mask.applied') AND seq BETWEEN {lo:UInt64} AND {hi:UInt64}
        ORDER BY seq`,
      query_params: { id: sessionId, lo, hi },
      format: 'JSONEachRow',
    })
  ).json<VerdictRow>();
  const rank: Record<Query['verdict'], number> = { allowed: 0, masked: 1, approved: 2, denied: 3, blocked: 4 };
  for (const r of rows) {
    const seq = Number(r.seq);
    const q = queries.find((x) => seq >= x.seq && seq <= Math.max(x.seq, x.end_seq));
    if (!q) continue;
    const d = parseDetail(r.detail);
    let verdict: Query['verdict'];
    let rule: string | null = null;
    let message = '';
    if (r.type === 'policy.blocked') {
      verdict = 'blocked';
      rule = typeof d.rule_id === 'string' ? d.rule_id : null;
      message = String(d.message ?? '');
    } else if (r.type === 'approval.resolved') {
      const decisions = Array.isArray(d.decisions) ? (d.decisions as { sub?: string; decision?: string; reason?: string; override?: string }[]) : [];
      const who = decisions.map((x) => `${x.sub ?? '?'}${x.override ? ` (${x.override})` : ''}: ${x.reason ?? ''}`).join('; ');
      verdict = d.outcome === 'approved' ? 'approved' : 'denied';
      message = d.outcome === 'approved' ? `approved by ${who}` : `${String(d.outcome)}${who ? ` — ${who}` : ''}`;
    } else {
      q.masked = true;
      verdict = 'masked';
      const ids = Array.isArray(d.rule_ids) ? (d.rule_ids as string[]) : [];
      rule = ids[0] ?? null;
      const cols = Array.isArray(d.columns) ? (d.columns as { name?: string }[]).map((c) => c.name ?? '?') : [];
      message = `masked: ${cols.join(', ') || 'detected values'}`;
    }
    // A statement blocked in a multi-statement Query keeps the first block (the one the client saw).
    if (rank[verdict] > rank[q.verdict]) {
      q.verdict = verdict;
      q.verdict_rule = rule;
      q.verdict_message = message;
    }
  }
}

function parseDetail(detail: string): Record<string, unknown> {
  try {
    const v = JSON.parse(detail) as unknown;
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
