/**
 * Batch → observations. Sessions' identity comes from `session.started` (kept in a directory while
 * the session lives) or, for a session first met mid-stream (restart, other instance), from the
 * `sessions` table. Statements come from the decode transform's rows (so they are the masked text
 * once masking runs before detection), analysed with PostgreSQL's own parser for kinds and tables.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { ChainedEvent } from '@vigil/schemas';
import type { SqlAnalyser } from '@vigil/gateway/sql/analyse';
import { parseChTime, type QueryRow } from '../../sinks/clickhouse/rows.ts';
import type { Observation, SessionFacts } from './types.ts';

const MAX_DIRECTORY = 200_000;

export class SessionDirectory {
  private readonly map = new Map<string, SessionFacts>();

  get(id: string): SessionFacts | undefined {
    return this.map.get(id);
  }

  set(id: string, s: SessionFacts): void {
    if (this.map.size >= MAX_DIRECTORY) this.map.delete(this.map.keys().next().value!);
    this.map.set(id, s);
  }

  delete(id: string): void {
    this.map.delete(id);
  }

  get size(): number {
    return this.map.size;
  }

  /** Learn identities from the batch's starts, then read back the sessions still unknown. */
  async resolve(store: ClickHouseClient, events: ChainedEvent[], queries: QueryRow[]): Promise<void> {
    const unknown = new Set<string>();
    for (const e of events) {
      if (e.type === 'session.started') this.set(e.session_id, factsOf(e));
      else if (e.type !== 'frame' && !this.map.has(e.session_id)) unknown.add(e.session_id);
    }
    for (const q of queries) if (!this.map.has(q.session_id)) unknown.add(q.session_id);
    if (unknown.size === 0) return;
    const r = await store.query({
      query: 'SELECT session_id, sub, groups, actor_kind, client_addr, client_app, target_id, toUnixTimestamp64Micro(started_at) AS t FROM sessions FINAL WHERE session_id IN {ids:Array(String)}',
      query_params: { ids: [...unknown] },
      format: 'JSONEachRow',
    });
    for (const row of await r.json<Record<string, unknown>>()) {
      this.set(String(row.session_id), {
        sub: String(row.sub), groups: (row.groups as string[]) ?? [], actor_kind: String(row.actor_kind), client_addr: String(row.client_addr),
        client_app: String(row.client_app), target_id: String(row.target_id), started_at: Number(row.t),
      });
    }
  }
}

function factsOf(e: ChainedEvent): SessionFacts {
  return {
    sub: e.sub ?? '', groups: e.groups ?? [], actor_kind: e.actor_kind ?? '', client_addr: e.client_addr ?? '',
    client_app: e.type === 'session.started' ? (e.client_app ?? '') : '', target_id: e.target_id ?? '', started_at: e.type === 'session.started' ? e.time : 0,
  };
}

/** Observations of a batch in time order (ties keep log order). */
export function observations(events: ChainedEvent[], queries: QueryRow[], dir: SessionDirectory, analyser: SqlAnalyser): Observation[] {
  const out: Observation[] = [];
  const sessionOf = (e: { session_id: string }, fallback?: ChainedEvent): SessionFacts => dir.get(e.session_id) ?? (fallback ? factsOf(fallback) : { sub: '', groups: [], actor_kind: '', client_addr: '', client_app: '', target_id: '', started_at: 0 });
  for (const e of events) {
    const base = { event_id: e.event_id, session_id: e.session_id, time: e.time };
    switch (e.type) {
      case 'session.started':
        out.push({ ...base, kind: 'session_start', s: sessionOf(e, e) });
        break;
      case 'session.ended':
        out.push({ ...base, kind: 'session_end', s: sessionOf(e, e), duration_us: e.duration_us });
        break;
      case 'auth.failed':
        out.push({ ...base, kind: 'auth_failed', s: sessionOf(e, e) });
        break;
      case 'policy.blocked':
        out.push({ ...base, kind: 'blocked', s: sessionOf(e, e), statement: e.statement });
        break;
      case 'approval.requested':
        out.push({ ...base, kind: 'approval_requested', s: sessionOf(e, e), approval_id: e.approval_id, statement: e.statement });
        break;
      case 'approval.resolved':
        out.push({ ...base, kind: 'approval_resolved', s: sessionOf(e, e), approval_id: e.approval_id, outcome: e.outcome, decisions: e.decisions });
        break;
      case 'approval.refused':
        // In the API's chain: the identity is the decider's own, from the event.
        out.push({ ...base, kind: 'approval_refused', s: factsOf(e), approval_id: e.approval_id, requester: e.requester, code: e.code });
        break;
      default:
        break;
    }
  }
  for (const q of queries) {
    const s = sessionOf(q);
    if (s.sub === '' && q.sub !== '') s.sub = q.sub;
    let stmt_kinds: string[] = [];
    let relations: string[] = [];
    if (q.statement !== '') {
      const analyses = analyser.analyse(q.statement);
      stmt_kinds = analyses.map((a) => a.kind);
      relations = analyses.flatMap((a) => a.relations);
    }
    out.push({
      kind: 'query', event_id: q.event_id, session_id: q.session_id, time: parseChTime(q.time), s,
      rows: q.rows, bytes: q.bytes, error: q.sqlstate !== '' || q.error !== '', statement: q.statement, stmt_kinds, relations,
    });
  }
  return out.map((o, i) => [o, i] as const).sort((a, b) => a[0].time - b[0].time || a[1] - b[1]).map(([o]) => o);
}
