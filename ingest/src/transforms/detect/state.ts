/**
 * Baselines for one batch, read from ClickHouse (shared by every ingest instance, kept across
 * restarts) and extended in memory while the batch's observations are evaluated in time order.
 *
 * One round of queries per batch, for the identities (and their groups) present in it:
 *   facts     detect_facts        first/last seen of addresses, apps, tables, approvals, denials
 *   baseline  detect_hourly       p95 over past active hours of the hour's largest statement and the hour's rows
 *   window    queries             rows read in the sliding window before the batch: one row each
 *                                 only for statements the batch's window can still slide past, one sum
 *                                 per identity for the rest (so a busy identity's window does not read
 *                                 back, and parse, every statement it ran in the last window_s)
 *   last      alerts              last alert per (rule, sub, dedupe key) inside the suppression window
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { chTime } from '../../sinks/clickhouse/rows.ts';
import type { DetectContext, FactRow, FactView } from './types.ts';

export interface BatchScope {
  subs: string[];
  groups: string[];
  /** Earliest observation time of the batch, µs. */
  from_us: number;
  /** Latest observation time of the batch, µs (observations are in time order). */
  to_us: number;
  lookback_us: number;
  window_us: number;
  suppression_us: number;
}

export interface LoadedState {
  facts: Map<string, FactView>;
  totals: Map<string, number>;
  baselines: Map<string, { active_hours: number; p95_max_rows: number; p95_hour_rows: number }>;
  window: Map<string, { time: number; rows: number }[]>;
  lastAlert: Map<string, number>;
}

const key = (...parts: string[]): string => parts.join('\0');

async function rows<T>(store: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<T[]> {
  const r = await store.query({ query, query_params: params, format: 'JSONEachRow' });
  return r.json<T>();
}

export async function loadState(store: ClickHouseClient, scope: BatchScope): Promise<LoadedState> {
  const state: LoadedState = { facts: new Map(), totals: new Map(), baselines: new Map(), window: new Map(), lastAlert: new Map() };
  if (scope.subs.length === 0) return state;
  const principals = [...new Set([...scope.subs, ...scope.groups])];
  const from = chTime(scope.from_us);
  const cut = Math.min(scope.to_us - scope.window_us, scope.from_us);
  const [facts, baselines, window, last] = await Promise.all([
    rows<{ kind: string; sub: string; value: string; f: string; l: string; n: string }>(
      store,
      `SELECT kind, sub, value, toUnixTimestamp64Micro(min(first_seen)) AS f, toUnixTimestamp64Micro(max(last_seen)) AS l, sum(n) AS n
       FROM detect_facts WHERE sub IN {subs:Array(String)} GROUP BY kind, sub, value`,
      { subs: principals },
    ),
    rows<{ sub: string; hours: string; p95_max_rows: number; p95_hour_rows: number }>(
      store,
      `SELECT sub, count() AS hours, quantileExact(0.95)(mr) AS p95_max_rows, quantileExact(0.95)(hr) AS p95_hour_rows
       FROM (SELECT sub, hour, max(max_rows) AS mr, sum(rows) AS hr FROM detect_hourly
             WHERE sub IN {subs:Array(String)} AND hour >= toDateTime({lb:DateTime64(6)}) AND hour < toStartOfHour(toDateTime({from:DateTime64(6)}))
             GROUP BY sub, hour)
       GROUP BY sub`,
      { subs: scope.subs, lb: chTime(Math.max(0, scope.from_us - scope.lookback_us)), from },
    ),
    // The window at an observation at t holds rows in (t - window, t]. Over the batch t only grows
    // up to to_us, so a stored row after `cut` (= to_us - window, at most from) never leaves it:
    // those come back as one sum per identity, and only rows at or before `cut` one by one.
    rows<{ sub: string; t: string; n: string }>(
      store,
      `SELECT sub, toUnixTimestamp64Micro(time) AS t, rows AS n FROM queries
       WHERE sub IN {subs:Array(String)} AND time > {wf:DateTime64(6)} AND time <= {cut:DateTime64(6)} AND time < {from:DateTime64(6)} AND rows > 0
       UNION ALL
       SELECT sub, {stay:Int64} AS t, sum(rows) AS n FROM queries
       WHERE sub IN {subs:Array(String)} AND time > {cut:DateTime64(6)} AND time < {from:DateTime64(6)} AND rows > 0
       GROUP BY sub`,
      { subs: scope.subs, wf: chTime(Math.max(0, scope.from_us - scope.window_us)), cut: chTime(Math.max(0, cut)), from, stay: cut + 1 },
    ),
    rows<{ rule: string; sub: string; dedupe_key: string; t: string }>(
      store,
      `SELECT rule, sub, dedupe_key, toUnixTimestamp64Micro(max(time)) AS t FROM alerts
       WHERE sub IN {subs:Array(String)} AND time >= {sf:DateTime64(6)} GROUP BY rule, sub, dedupe_key`,
      { subs: scope.subs, sf: chTime(Math.max(0, scope.from_us - scope.suppression_us)) },
    ),
  ]);
  for (const r of facts) {
    const n = Number(r.n);
    state.facts.set(key(r.kind, r.sub, r.value), { first: Number(r.f), last: Number(r.l), n });
    state.totals.set(key(r.kind, r.sub), (state.totals.get(key(r.kind, r.sub)) ?? 0) + n);
  }
  for (const b of baselines) state.baselines.set(b.sub, { active_hours: Number(b.hours), p95_max_rows: Number(b.p95_max_rows), p95_hour_rows: Number(b.p95_hour_rows) });
  for (const w of window) {
    let list = state.window.get(w.sub);
    if (!list) state.window.set(w.sub, (list = []));
    list.push({ time: Number(w.t), rows: Number(w.n) });
  }
  // In time order for the sliding sum; a sum (stamped cut + 1: after every single row, never slid
  // past in this batch, not after any of the batch's own rows) goes last.
  for (const list of state.window.values()) list.sort((a, b) => a.time - b.time);
  for (const a of last) state.lastAlert.set(key(a.rule, a.sub, a.dedupe_key), Number(a.t));
  return state;
}

/** The DetectContext of one batch over loaded state; collects the facts to write back. */
export class BatchContext implements DetectContext {
  readonly newFacts: FactRow[] = [];
  private readonly sums = new Map<string, { list: { time: number; rows: number }[]; head: number; sum: number }>();

  constructor(
    private readonly state: LoadedState,
    private readonly sessionState: (session_id: string) => Map<string, unknown>,
  ) {}

  fact(kind: string, sub: string, value: string): FactView | undefined {
    return this.state.facts.get(key(kind, sub, value));
  }

  note(kind: string, sub: string, value: string, time: number): void {
    const k = key(kind, sub, value);
    const cur = this.state.facts.get(k);
    if (cur) {
      cur.first = Math.min(cur.first, time);
      cur.last = Math.max(cur.last, time);
      cur.n++;
    } else this.state.facts.set(k, { first: time, last: time, n: 1 });
    const tk = key(kind, sub);
    this.state.totals.set(tk, (this.state.totals.get(tk) ?? 0) + 1);
    // addr/app facts are maintained by the sessions materialized views; the rest are written here.
    if (kind !== 'addr' && kind !== 'app') this.newFacts.push({ kind, sub, value, time });
  }

  total(kind: string, sub: string): number {
    return this.state.totals.get(key(kind, sub)) ?? 0;
  }

  baseline(sub: string) {
    return this.state.baselines.get(sub) ?? { active_hours: 0, p95_max_rows: 0, p95_hour_rows: 0 };
  }

  private window(sub: string) {
    let w = this.sums.get(sub);
    if (!w) {
      const list = this.state.window.get(sub) ?? [];
      w = { list, head: 0, sum: list.reduce((a, r) => a + r.rows, 0) };
      this.sums.set(sub, w);
    }
    return w;
  }

  noteRows(sub: string, time: number, rows: number): void {
    if (rows <= 0) return;
    const w = this.window(sub);
    w.list.push({ time, rows });
    w.sum += rows;
  }

  /** Observations arrive in time order, so the window only ever slides forward. */
  windowRows(sub: string, time: number, window_us: number): number {
    const w = this.window(sub);
    while (w.head < w.list.length && w.list[w.head]!.time <= time - window_us) w.sum -= w.list[w.head++]!.rows;
    return w.sum;
  }

  session<T>(session_id: string, detector: string, init: () => T): T {
    const m = this.sessionState(session_id);
    if (!m.has(detector)) m.set(detector, init());
    return m.get(detector) as T;
  }

  lastAlert(rule: string, sub: string, dedupe: string): number | undefined {
    return this.state.lastAlert.get(key(rule, sub, dedupe));
  }

  setLastAlert(rule: string, sub: string, dedupe: string, time: number): void {
    this.state.lastAlert.set(key(rule, sub, dedupe), time);
  }
}
