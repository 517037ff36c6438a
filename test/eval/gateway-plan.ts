/**
 * The gateway sample's plan: which generated sessions are replayed as real PostgreSQL client
 * traffic through `vigil start`, and with which detector configuration. Everything is taken from
 * the generated corpus (scenarios.ts): for each detector family, its first injected session (who,
 * address, client application, statements) and that identity's first benign sessions as history;
 * beside it a benign twin — the same session with the malicious feature taken out.
 *
 * Time is real here, not simulated: the gateway stamps every event with the wall clock and nothing
 * fakes it. Where a detector depends on time, the plan changes configuration or stretches real time,
 * never the clock:
 *  - off-hours: the generated attack runs at night on a weekend. The sample cannot choose when it
 *    runs, so the injected identity gets its own calendar in which the run's dates (UTC, today and
 *    tomorrow, in case the run crosses midnight) are holidays; the organisation's schedule (every
 *    day, all day) covers the twin, a teammate running the same statements at the same moment.
 *  - long session: the generated 9.5 h pause is replayed as a real pause of `long_pause_s` against
 *    `max_duration_s` = `long_pause_s` − 5.
 *  - privileged: the twin is a teammate named in a change window that covers the run.
 *  - baselines need hours of history (bulk read's per-identity baseline wants `baseline_min_hours`
 *    active hours); a sample replayed in a minute has one hour, so bulk read is judged against the
 *    absolute per-statement limit (scaled to the seeded tables) and rare access needs
 *    `min_history_statements` 20 instead of 50 (the replayed history is ~50 statements).
 * Gaps between statements (after_s) are not replayed: statements follow each other as fast as the
 * client goes, which only makes the error burst denser (it is generated 1 s apart, inside 60 s anyway).
 */
import type { Step, Who } from '../../ingest/src/transforms/detect/testkit.ts';
import type { Corpus, Labeled } from './scenarios.ts';

/** Families that can be driven as client traffic (overrides need the approval flow's events; see docs/detection.md). */
export const GATEWAY_FAMILIES = ['bulk_read', 'error_burst', 'long_session', 'new_source', 'off_hours', 'privileged', 'rare_access'] as const;
export type GatewayFamily = (typeof GATEWAY_FAMILIES)[number];

export interface PlannedSession {
  role: 'history' | 'twin' | 'injected';
  family?: GatewayFamily;
  who: Who;
  steps: Step[];
  /** Real pause (s) before the last statement (long session). */
  hold_last_s?: number;
}

export interface Plan {
  /** History per identity, replayed (and ingested) before the scenarios. */
  history: PlannedSession[];
  /** Per family: the twin, then the injected session (run in that order: some share an identity). */
  pairs: { family: GatewayFamily; twin: PlannedSession; injected: PlannedSession }[];
  /** Tables the statements read (created for the run) and their row counts. */
  tables: Map<string, number>;
  detect: Record<string, unknown>;
}

/** Smallest table: room for the generated `where id > k limit n` reads (k < 1000). */
const MIN_TABLE_ROWS = 2500;
const isQuery = (s: Step): s is Extract<Step, { q: string }> => 'q' in s;

export function planSample(corpus: Corpus, opts: { families?: readonly GatewayFamily[]; history_sessions?: number; long_pause_s?: number; now?: Date } = {}): Plan {
  const families = opts.families ?? GATEWAY_FAMILIES;
  const nHistory = opts.history_sessions ?? 6;
  const longPause = opts.long_pause_s ?? 20;
  const now = opts.now ?? new Date();
  const benignOf = (sub: string): Labeled[] => corpus.sessions.filter((s) => !s.attack && !s.setup && s.who.sub === sub);
  const used = new Set<string>();
  const firstAttack = (f: string): Labeled => {
    const s = corpus.sessions.find((x) => x.attack === f);
    if (!s) throw new Error(`the corpus has no injected ${f} session`);
    return s;
  };
  for (const f of families) used.add(firstAttack(f).who.sub);
  /** An identity of the same team that is not otherwise in the sample, as it usually connects. */
  const teammate = (who: Who): Who => {
    const mate = corpus.sessions.find((s) => !s.attack && s.who.groups?.[0] === who.groups?.[0] && !used.has(s.who.sub));
    if (!mate) throw new Error(`no teammate for ${who.sub}`);
    used.add(mate.who.sub);
    return mate.who;
  };
  /** The identity as it usually connects (its benign sessions' address and application). */
  const usual = (sub: string): Who => benignOf(sub)[0]!.who;
  const history: PlannedSession[] = [];
  const withHistory = (sub: string): Step[][] => {
    const sessions = benignOf(sub).slice(0, nHistory).map((s) => s.steps);
    for (const steps of sessions) history.push({ role: 'history', who: usual(sub), steps });
    return sessions;
  };
  const knownTable = (past: Step[][]): string => {
    const m = /from (\w+)/.exec(past.flat().filter(isQuery).find((s) => !s.error)!.q);
    return m![1]!;
  };

  const pairs: Plan['pairs'] = [];
  const holidaySubs: string[] = [];
  const windowSubs: string[] = [];
  for (const family of families) {
    const a = firstAttack(family);
    const injected: PlannedSession = { role: 'injected', family, who: a.who, steps: a.steps };
    let twin: PlannedSession;
    const last = a.steps.length - 1;
    const replaceLast = (step: Step): Step[] => [...a.steps.slice(0, last), step];
    switch (family) {
      case 'bulk_read': {
        // The same full-table read, at the identity's usual size.
        const past = withHistory(a.who.sub);
        const big = a.steps[last] as Extract<Step, { q: string }>;
        const usualRows = Math.max(...past.flat().filter(isQuery).map((s) => s.rows ?? 1));
        twin = { role: 'twin', family, who: a.who, steps: replaceLast({ q: `${big.q} limit ${usualRows}`, rows: usualRows }) };
        break;
      }
      case 'rare_access': {
        // The same session reading a table the identity has read before instead of hr_salaries.
        const past = withHistory(a.who.sub);
        const read = a.steps[last] as Extract<Step, { q: string }>;
        twin = { role: 'twin', family, who: a.who, steps: replaceLast({ q: `select * from ${knownTable(past)} limit ${read.rows ?? 1}`, rows: read.rows }) };
        break;
      }
      case 'new_source':
        withHistory(a.who.sub);
        twin = { role: 'twin', family, who: usual(a.who.sub), steps: a.steps };
        break;
      case 'long_session':
        withHistory(a.who.sub);
        injected.hold_last_s = longPause;
        twin = { role: 'twin', family, who: a.who, steps: a.steps };
        break;
      case 'error_burst': {
        // As many statements, on a table the identity knows, with the benign error rate (3 of 25).
        const past = withHistory(a.who.sub);
        const table = knownTable(past);
        twin = {
          role: 'twin', family, who: a.who,
          steps: a.steps.map((_, j) => (j % 9 === 4 ? { q: `select * from ${table} where bogus_col = ${j}`, error: '42703' } : { q: `select * from ${table} where id > ${j} limit 10`, rows: 10 })),
        };
        break;
      }
      case 'off_hours':
        // No history: it would run "today" too, i.e. on the identity's holiday (see the header).
        holidaySubs.push(a.who.sub);
        twin = { role: 'twin', family, who: teammate(a.who), steps: a.steps };
        break;
      case 'privileged': {
        withHistory(a.who.sub);
        const mate = teammate(a.who);
        windowSubs.push(mate.sub);
        twin = { role: 'twin', family, who: mate, steps: a.steps };
        break;
      }
    }
    pairs.push({ family, twin, injected });
  }

  // Each table holds what the generated statements say they read: enough for every `id > k limit n`
  // read (k < 1000, n ≤ ~1000), and as many rows as the largest full read of it (the bulk read's).
  const tables = new Map<string, number>();
  for (const s of [...history, ...pairs.flatMap((p) => [p.twin, p.injected])]) {
    for (const st of s.steps.filter(isQuery)) {
      for (const m of st.q.matchAll(/(?:from|table) (\w+)/g)) {
        if (m[1]!.startsWith('pg_')) continue;
        const full = /^select \* from \w+$/.test(st.q) && !st.error;
        tables.set(m[1]!, Math.max(tables.get(m[1]!) ?? 1, full ? (st.rows ?? 1) : MIN_TABLE_ROWS));
      }
    }
  }
  const day = (d: number) => new Date(now.getTime() + d * 86_400_000).toISOString().slice(0, 10);
  const allWeek = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  const detect = {
    off_hours: {
      schedule: { timezone: 'UTC', days: allWeek },
      identities: Object.fromEntries(holidaySubs.map((sub) => [sub, { timezone: 'UTC', days: allWeek, holidays: [day(0), day(1)] }])),
    },
    change_windows: windowSubs.length
      ? [{ id: 'CHG-EVAL', start: new Date(now.getTime() - 3_600_000).toISOString(), end: new Date(now.getTime() + 6 * 3_600_000).toISOString(), subs: windowSubs }]
      : [],
    // Generated benign reads return at most ~1 000 rows, generated bulk reads 4 000 or more.
    bulk_read: { max_rows_per_query: 2000 },
    rare_access: { min_history_statements: 20 },
    long_session: { max_duration_s: Math.max(1, longPause - 5) },
  };
  return { history, pairs, tables, detect };
}
