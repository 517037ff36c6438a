/**
 * Scenario generator for the detection eval: a benign workload (identities in teams, each with its
 * home address, client, tables and habits, working weekdays over simulated weeks, with realistic
 * noise: errors, occasional larger reads, a teammate's table) plus injected insider scenarios, one
 * family per detector. Deterministic for a seed. Sessions come back sorted by start time.
 */
import { buildSession, type BuiltSession, type Step, type Who } from '../../ingest/src/transforms/detect/testkit.ts';

export interface Labeled extends BuiltSession {
  /** Detector the scenario targets; undefined = benign. */
  attack?: string;
  /** µs when the malicious behaviour starts (time-to-alert origin). */
  attack_start?: number;
  /** Part of a scenario that cannot alert by itself (the first half of a mutual approval): neither benign nor scored. */
  setup?: boolean;
  /** Who ran it and what it ran: the gateway sample (gateway-sample.ts) replays these as real client traffic. */
  who: Who;
  steps: Step[];
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TEAMS: Record<string, string[]> = {
  sales: ['orders', 'customers', 'invoices', 'products'],
  support: ['tickets', 'customers', 'kb_articles'],
  finance: ['invoices', 'ledger', 'payments'],
  eng: ['deployments', 'feature_flags', 'jobs', 'events'],
};
const H = 3600e6;
const DAY = 24 * H;
/** Monday 2026-01-05 00:00 UTC. */
export const T0 = Date.UTC(2026, 0, 5) * 1000;

export interface Corpus {
  sessions: Labeled[];
  identities: number;
  days: number;
}

export function generate(options: { identities?: number; weeks?: number; seed?: number } = {}): Corpus {
  const r = rng(options.seed ?? 42);
  const nId = options.identities ?? 40;
  const weeks = options.weeks ?? 2;
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const teamNames = Object.keys(TEAMS);
  const people = Array.from({ length: nId }, (_, i) => {
    const team = teamNames[i % teamNames.length]!;
    const tables = TEAMS[team]!.filter(() => r() < 0.8);
    return {
      who: { sub: `user${i}`, groups: [team], addr: `10.${i % 4}.${i}.10:${40000 + i}`, app: pick(['psql', 'DBeaver 24.1', 'pgcli', 'python-psycopg']), actor_kind: 'human' as const },
      tables: tables.length ? tables : [TEAMS[team]![0]!],
      rows: Math.round(20 + r() * 300),
    };
  });
  const sessions: Labeled[] = [];
  let sid = 0;
  const id = () => `eval-${++sid}`;
  const benignSteps = (p: (typeof people)[number], k: number): Step[] =>
    Array.from({ length: k }, () => {
      const table = r() < 0.02 ? pick(TEAMS[p.who.groups[0]!]!) : pick(p.tables);
      if (r() < 0.05) return { q: `select * from ${table} where bogus_col = 1`, error: '42703', after_s: 20 + r() * 200 };
      const rows = Math.max(1, Math.round(p.rows * (0.2 + r() * (r() < 0.05 ? 3 : 1.2))));
      return { q: `select * from ${table} where id > ${Math.floor(r() * 1000)} limit ${rows}`, rows, after_s: 20 + r() * 300 };
    });
  const days = weeks * 7;
  for (let d = 0; d < days; d++) {
    const dow = d % 7;
    if (dow >= 5) continue; // weekends: nobody works
    for (const p of people) {
      const n = 1 + Math.floor(r() * 3);
      for (let k = 0; k < n; k++) {
        const start = T0 + d * DAY + (8 + r() * 9) * H; // 08:00–17:00 UTC
        const steps = benignSteps(p, 4 + Math.floor(r() * 10));
        sessions.push({ ...buildSession(id(), p.who, Math.round(start), steps), who: p.who, steps });
      }
    }
  }
  // Insider scenarios, in the last week (after baselines exist), each by a different identity.
  const attackDay = (weeks - 1) * 7 + 1; // Tuesday of the last week
  let victim = 0;
  const next = () => people[victim++ % people.length]!;
  const at = (hour: number, extraDays = 0) => Math.round(T0 + (attackDay + extraDays) * DAY + hour * H);
  const inject = (attack: string, who: Who, start: number, steps: Step[], startOffset = 0, setup = false) => {
    const s = { ...buildSession(id(), who, start, steps), who, steps };
    sessions.push(setup ? { ...s, setup } : { ...s, attack, attack_start: start + startOffset });
  };
  const reps = 4;
  for (let i = 0; i < reps; i++) {
    const p1 = next();
    inject('bulk_read', p1.who, at(10 + i * 0.3, i % 3), [...benignSteps(p1, 2), { q: `select * from ${p1.tables[0]}`, rows: p1.rows * 200, after_s: 60 }]);
    const p2 = next();
    inject('off_hours', p2.who, at(2 + i, 3), benignSteps(p2, 3)); // Friday/Saturday night
    const p3 = next();
    inject('new_source', { ...p3.who, addr: `198.51.100.${i + 7}:5555`, app: 'curl/8.5' }, at(11 + i * 0.2, i % 3), benignSteps(p3, 3));
    const p4 = next();
    inject('rare_access', p4.who, at(14 + i * 0.2, i % 3), [...benignSteps(p4, 2), { q: 'select * from hr_salaries', rows: 300, after_s: 30 }]);
    const p5 = next();
    inject('long_session', p5.who, at(8 + i * 0.2, i % 3), [...benignSteps(p5, 2), { q: `select count(*) from ${p5.tables[0]}`, after_s: 9.5 * 3600 }]);
    const p6 = next();
    inject('error_burst', p6.who, at(15 + i * 0.2, i % 3), Array.from({ length: 25 }, (_, j) => ({ q: `select * from pg_shadow_${j}`, error: '42501', after_s: 1 })));
    const p7 = next();
    inject('privileged', p7.who, at(13 + i * 0.2, i % 3), [...benignSteps(p7, 2), { q: `drop table ${p7.tables[0]}`, after_s: 30 }]);
    const p8 = next();
    const approver = next();
    const req = (aid: string, statement: string) => ({ event: { type: 'approval.requested', approval_id: aid, rule_id: 'prod-writes', approver_groups: ['leads'], min_approvers: 1, allow_self_approval: true, expires_at: 0, protocol_kind: 'simple', statement, features: ['write'], relations: [] }, after_s: 5 });
    const res = (aid: string, outcome: string, decisions: Record<string, unknown>[]) => ({ event: { type: 'approval.resolved', approval_id: aid, outcome, decisions, waited_us: 1e6 }, after_s: 30 });
    const dec = (sub: string, decision = 'approve', override?: string) => ({ event_id: `d${sid}${sub}`, decision, sub, reason: 'ok', ...(override ? { override } : {}) });
    if (i % 4 === 0) inject('overrides', p8.who, at(11, i % 3), [req(`a${i}`, 'delete from audit_log'), res(`a${i}`, 'approved', [dec(p8.who.sub, 'approve', 'break_glass')])]);
    if (i % 4 === 1) inject('overrides', p8.who, at(11, i % 3), [req(`a${i}`, 'delete from audit_log where id = 1'), res(`a${i}`, 'denied', [dec(approver.who.sub, 'deny')]), { q: 'delete from audit_log where id = 2', after_s: 120 }]);
    if (i % 4 === 2) {
      inject('overrides', p8.who, at(11, i % 3), [req(`a${i}x`, 'update ledger set amount = 0'), res(`a${i}x`, 'approved', [dec(approver.who.sub)])], 0, true);
      inject('overrides', approver.who, at(12, i % 3), [req(`a${i}y`, 'update ledger set amount = 1'), res(`a${i}y`, 'approved', [dec(p8.who.sub)])]);
    }
    if (i % 4 === 3) inject('overrides', p8.who, at(11, i % 3), [req(`a${i}`, 'truncate payments'), res(`a${i}`, 'approved', [dec(approver.who.sub, 'approve', 'force')])]);
  }
  sessions.sort((a, b) => a.start_us - b.start_us);
  return { sessions, identities: nId, days };
}
