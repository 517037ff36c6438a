/**
 * Every detector fires on its scenario and stays quiet on the benign twin, through the real
 * pipeline (in-memory log → decode → detect → chDB) with baselines read back from chDB.
 */
import { beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClickHouseClient } from '@clickhouse/client';
import { Topics } from '@vigil/eventlog/types';
import { AlertEvent, validateEvent } from '@vigil/schemas';
import { useChdbStore } from '../../testing/store.ts';
import { startIngest } from '../../index.ts';
import { MemoryEventLog } from '../../testing/memory-log.ts';
import { loadIngestConfig } from '../../config.ts';
import { buildSession, type Step, type Who } from './testkit.ts';

let store: ClickHouseClient;
useChdbStore('vigil-detect-', (s) => (store = s));
const reset = async () => {
  for (const t of ['sessions', 'events', 'queries', 'alerts', 'detect_facts', 'detect_hourly']) await store.command({ query: `TRUNCATE TABLE ${t}` });
};
beforeEach(reset);

const H = 3600e6;
/** Monday 2026-01-12 10:00 UTC: inside the default working hours (mon–fri, all day → set below). */
const MON10 = Date.UTC(2026, 0, 12, 10, 0, 0) * 1000;
const DETECT = {
  off_hours: { schedule: { timezone: 'Europe/Paris', from: '08:00', to: '19:00', holidays: ['2026-01-14'] } },
  new_source: { min_history_sessions: 3 },
  rare_access: { min_history_statements: 3 },
  bulk_read: { baseline_min_hours: 3, max_rows_per_query: 1_000_000, max_rows_per_window: 5_000_000 },
  change_windows: [
    { id: 'CHG-1', start: '2026-01-13T09:00:00Z', end: '2026-01-13T11:00:00Z', subs: ['dba'] },
    { id: 'CHG-2', start: '2026-01-13T20:00:00Z', end: '2026-01-13T23:00:00Z', subs: ['dba'] },
  ],
};

let n = 0;
/** Ingest phases in order (each phase committed before the next, so its baselines are in chDB). */
async function run(...phases: { records: unknown[] }[][]): Promise<AlertEvent[]> {
  await reset();
  const log = new MemoryEventLog();
  await log.ensureTopics([Topics.frames]);
  const group = `detect-${++n}`;
  const handle = await startIngest({ config: { ingest: { group_id: group, detect: DETECT } } as never, log, store });
  let total = 0;
  for (const phase of phases) {
    for (const s of phase) {
      log.append(Topics.frames, s.records as never);
      total += s.records.length;
    }
    const t0 = Date.now();
    while (log.committedOffset(group, Topics.frames) < total) {
      if (Date.now() - t0 > 60_000) throw new Error('ingest did not catch up');
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  await handle.stop();
  // What was published on vigil.alerts.v1 must be exactly what was stored.
  const published = ((log as unknown as { topics: Map<string, { value: Buffer }[]> }).topics.get(Topics.alerts) ?? []).map((r) => JSON.parse(r.value.toString()) as AlertEvent);
  const r = await store.query({ query: 'SELECT alert_id FROM alerts FINAL ORDER BY time', format: 'JSONEachRow' });
  const stored = (await r.json<{ alert_id: string }>()).map((a) => a.alert_id);
  assert.deepEqual([...new Set(published.map((a) => a.alert_id))].sort(), [...stored].sort());
  for (const a of published) assert.deepEqual(validateEvent(a), [], 'published alert is a valid alert@1');
  return published.sort((a, b) => a.time - b.time);
}
const rules = (alerts: AlertEvent[]) => [...new Set(alerts.map((a) => a.rule))].sort();

let sid = 0;
const sess = (who: Who, t0: number, steps: Step[]) => buildSession(`s-${++sid}`, who, t0, steps);
const alice: Who = { sub: 'alice', groups: ['analysts'], addr: '10.0.0.7:5000', app: 'psql' };
const reads = (k: number, table = 'orders', rows = 10): Step[] => Array.from({ length: k }, (_, i) => ({ q: `select * from ${table} where id = ${i}`, rows, after_s: 5 }));
/** A few days of alice's ordinary work: hours of small reads on orders/customers. */
const WEEKDAYS_BEFORE = [3, 4, 5, 6, 7, 10]; // Fri 9 … Mon 5, Fri 2 January: working days
const history = () =>
  WEEKDAYS_BEFORE.map((d) => sess(alice, MON10 - d * 24 * H, [...reads(1, 'orders', 50), ...reads(1, 'customers', 40), ...reads(2, 'orders', 50)]));

test('config: defaults fill every detector; unknown keys are refused', () => {
  const c = loadIngestConfig({});
  assert.equal(c.detect.bulk_read.max_rows_per_query, 100_000);
  assert.equal(c.detect.off_hours.schedule.timezone, 'UTC');
  assert.equal(c.siem.ocsf.enabled, true);
  assert.throws(() => loadIngestConfig({ detect: { bulk_read: { max_rowz: 1 } } } as never), /ING_ERR_CONFIG|invalid ingest/);
});

test('bulk_read: absolute per-query limit fires; the same statement under the limit does not', async () => {
  const fire = await run([sess(alice, MON10, [{ q: 'select * from orders', rows: 2_000_000 }])]);
  assert.deepEqual(rules(fire), ['bulk_read.per_query']);
  assert.equal(fire[0]!.sub, 'alice');
  assert.equal(fire[0]!.evidence.length, 1);
  const quiet = await run([sess(alice, MON10, [{ q: 'select * from orders', rows: 900_000 }])]);
  assert.deepEqual(rules(quiet), []);
});

test('bulk_read: against the identity baseline (per query and window) after history; not without enough history', async () => {
  const fire = await run(history(), [sess(alice, MON10, [{ q: 'select * from orders', rows: 20_000 }])]);
  assert.ok(rules(fire).includes('bulk_read.per_query_baseline'), JSON.stringify(rules(fire)));
  assert.ok(rules(fire).includes('bulk_read.window'));
  const twin = await run(history(), [sess(alice, MON10, [{ q: 'select * from orders', rows: 60 }])]);
  assert.deepEqual(rules(twin), []);
  const noHistory = await run([sess(alice, MON10, [{ q: 'select * from orders', rows: 20_000 }])]);
  assert.deepEqual(rules(noHistory), [], 'no trusted baseline yet, under the absolute limits');
});

test('off_hours: night, weekend and holiday in the schedule time zone fire; working hours and a change window do not', async () => {
  const night = Date.UTC(2026, 0, 12, 21, 30) * 1000; // 22:30 Paris
  const saturday = Date.UTC(2026, 0, 17, 10, 0) * 1000;
  const holiday = Date.UTC(2026, 0, 14, 10, 0) * 1000;
  const fire = await run([sess(alice, night, reads(1)), sess(alice, saturday, reads(1)), sess(alice, holiday, reads(1))]);
  assert.equal(fire.filter((a) => a.rule === 'off_hours').length, 3);
  const dba: Who = { sub: 'dba', groups: ['dba'] };
  const quiet = await run([
    sess(alice, Date.UTC(2026, 0, 12, 17, 30) * 1000, reads(2)), // 18:30 Paris, in hours
    sess(dba, Date.UTC(2026, 0, 13, 21, 0) * 1000, reads(2)), // 22:00 Paris, inside CHG-2 for dba
  ]);
  assert.deepEqual(rules(quiet), []);
  const notCovered = await run([sess({ ...alice, sub: 'eve' }, Date.UTC(2026, 0, 13, 21, 0) * 1000, reads(1))]);
  assert.deepEqual(rules(notCovered), ['off_hours'], 'CHG-2 covers dba only');
});

test('privileged: DROP outside a change window fires (once per session, repeats as evidence); inside CHG-1 it does not', async () => {
  const dba: Who = { sub: 'dba', groups: ['dba'] };
  const outside = Date.UTC(2026, 0, 13, 14, 0) * 1000;
  const inside = Date.UTC(2026, 0, 13, 10, 0) * 1000;
  const fire = await run([sess(dba, outside, [{ q: 'drop table orders_old' }, { q: 'truncate audit_tmp' }, { q: 'select 1' }])]);
  const priv = fire.filter((a) => a.rule === 'privileged.outside_change_window');
  assert.equal(priv.length, 1, 'suppressed to one alert per session');
  const quiet = await run([sess(dba, inside, [{ q: 'drop table orders_old' }, { q: 'grant select on orders to bob' }])]);
  assert.deepEqual(rules(quiet), []);
});

test('new_source: a new client address and a new user agent for an established identity fire; known ones do not', async () => {
  const fire = await run(history(), [sess({ ...alice, addr: '203.0.113.9:4444', app: 'python-requests' }, MON10, reads(1))]);
  assert.deepEqual(rules(fire), ['new_source.addr', 'new_source.app']);
  const twin = await run(history(), [sess({ ...alice, addr: '10.0.0.7:6001' }, MON10, reads(1))]);
  assert.deepEqual(rules(twin), [], 'same host, other port');
});

test('rare_access: first access to a table by the identity and its groups fires; a table the group already uses does not', async () => {
  const fire = await run(history(), [sess(alice, MON10, [{ q: 'select * from payroll' }])]);
  assert.deepEqual(rules(fire), ['rare_access']);
  assert.equal(fire[0]!.facts.table, 'payroll');
  const colleague = sess({ sub: 'carol', groups: ['analysts'] }, MON10 - 2 * H, [{ q: 'select * from invoices' }]);
  const twin = await run([...history(), colleague], [sess(alice, MON10, [{ q: 'select * from public.orders join invoices using (id)' }])]);
  assert.deepEqual(rules(twin), []);
});

test('long_session: over max_duration_s fires; a shorter one does not', async () => {
  const cfg = 8 * 3600;
  const fire = await run([sess(alice, MON10 - 10 * H, [{ q: 'select 1', after_s: cfg + 60 }])]);
  assert.ok(rules(fire).includes('long_session'));
  const quiet = await run([sess(alice, MON10, [{ q: 'select 1', after_s: 3600 }])]);
  assert.deepEqual(rules(quiet), []);
});

test('error_burst: a burst of failing statements fires; a few spread-out errors do not', async () => {
  const burst: Step[] = Array.from({ length: 15 }, (_, i) => ({ q: `select * from t${i}`, error: '42P01', after_s: 1 }));
  const fire = await run([sess(alice, MON10, burst)]);
  assert.ok(rules(fire).includes('error_burst'));
  const spread: Step[] = Array.from({ length: 15 }, (_, i) => ({ q: `select * from t${i}`, error: '42P01', after_s: 120 }));
  const quiet = await run([sess(alice, MON10, spread)]);
  assert.deepEqual(rules(quiet).filter((r) => r === 'error_burst'), []);
});

const requested = (id: string, statement: string) => ({ event: { type: 'approval.requested', approval_id: id, rule_id: 'prod-writes', approver_groups: ['leads'], min_approvers: 1, allow_self_approval: false, expires_at: MON10 + H, protocol_kind: 'simple', statement, features: ['write'], relations: ['orders'] } });
const resolved = (id: string, outcome: string, decisions: Record<string, unknown>[]) => ({ event: { type: 'approval.resolved', approval_id: id, outcome, decisions, waited_us: 1000 } });
const approve = (sub: string, override?: string) => ({ event_id: `d-${sub}-${override ?? ''}`, decision: 'approve', sub, reason: 'ok', ...(override ? { override } : {}) });

test('overrides: break-glass, self-approval, mutual approval and deny→retry fire; an ordinary approval does not', async () => {
  const bob: Who = { sub: 'bob', groups: ['leads'] };
  const fire = await run([
    sess(alice, MON10, [requested('a1', 'update orders set x = 1'), resolved('a1', 'approved', [approve('bob', 'break_glass')])]),
    sess(alice, MON10 + 60e6, [requested('a2', 'delete from orders'), resolved('a2', 'approved', [approve('alice')])]),
    sess(bob, MON10 + 120e6, [requested('a3', 'update orders set y = 2'), resolved('a3', 'approved', [approve('alice')])]),
    sess(alice, MON10 + 180e6, [requested('a4', "delete from orders where id = 5"), resolved('a4', 'denied', [{ ...approve('bob'), decision: 'deny' }]), { q: 'DELETE FROM orders WHERE id = 6' }]),
  ]);
  const r = rules(fire);
  for (const rule of ['overrides.override', 'overrides.self_approval', 'overrides.mutual_approval', 'overrides.deny_retry']) assert.ok(r.includes(rule), `${rule} in ${r}`);
  assert.equal(fire.find((a) => a.rule === 'overrides.self_approval')!.severity, 'critical');
  const twin = await run([sess(alice, MON10, [requested('b1', 'update orders set x = 1'), resolved('b1', 'approved', [approve('bob')]), { q: 'update orders set x = 1' }])]);
  assert.deepEqual(rules(twin), []);
});

test('overrides: a self-approval the API refused (approval.refused) fires; a refusal for not being an approver does not', async () => {
  const refused = (requester: string, code: string) => ({
    event: { type: 'approval.refused', approval_id: `r-${code}`, request_session_id: 's-held', requester, decision: 'approve', code, message: 'refused' },
  });
  const fire = await run([sess(alice, MON10, [refused('alice', 'GW_ERR_APPROVAL_SELF')])]);
  const attempt = fire.find((a) => a.rule === 'overrides.self_approval_attempt');
  assert.ok(attempt, `self_approval_attempt in ${rules(fire)}`);
  assert.equal(attempt.sub, 'alice');
  assert.equal(attempt.severity, 'high');
  const carol: Who = { sub: 'carol', groups: ['dev'] };
  const twin = await run([sess(carol, MON10, [refused('alice', 'GW_ERR_APPROVAL_NOT_APPROVER')])]);
  assert.deepEqual(rules(twin).filter((r) => r.startsWith('overrides')), []);
});

test('suppression: the same incident within the window is one alert; alert ids are stable across a redelivery', async () => {
  const s1 = sess(alice, MON10, [{ q: 'select * from orders', rows: 2_000_000 }, { q: 'select * from orders', rows: 2_000_000 }]);
  const first = await run([s1]);
  assert.equal(first.filter((a) => a.rule === 'bulk_read.per_query').length, 1);
  const again = await run([s1]); // the same session ingested again from scratch: same ids
  assert.deepEqual(again.map((a) => a.alert_id), first.map((a) => a.alert_id));
});
