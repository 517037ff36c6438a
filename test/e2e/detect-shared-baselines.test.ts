/**
 * Issue 5 acceptance: baselines survive an ingest restart and are shared by two ingest instances in
 * one consumer group — on the real Kafka broker, with one ClickHouse store (chDB) both share.
 *
 * Two ingest pipelines run in one child process (test/support/ingest-members.ts), each with its own
 * Kafka client and group membership, over one chDB store: chDB binds a data path to one process, so
 * this is how two members can share a store here (docs/detection.md, "Testing the shared state").
 *
 *   phase 1 (process A, members 0 and 1): alice's history is spread over both members' partitions
 *     (3 sessions each). Then, on each member, sessions whose verdict needs the history of *both*:
 *     a new address and a never-read table fire (min_history_sessions 6, min_history_statements 10:
 *     neither member saw enough on its own), the benign twin (known host, known table) stays quiet;
 *     a bulk read over the window fires once.
 *   phase 2 (process B: a restart, nothing in memory, chDB reopened from disk): a new address and a
 *     new table fire, the benign twin stays quiet, and a second bulk read in the same window is
 *     suppressed by the alert of phase 1 — all from state written before the restart.
 * Sessions are routed to partitions (hence members) by choosing their keys with Kafka's default
 * partitioner; every claim is checked against what each member actually reported consuming.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Partitioners } from 'kafkajs';
import { KafkaEventLog } from '@vigil/eventlog/kafka/index';
import type { LogRecord, Producer } from '@vigil/eventlog/types';
import { openStore, releaseStore } from '@vigil/ingest/store/client';
import { buildSession, type BuiltSession, type Step, type Who } from '@vigil/ingest/transforms/detect/testkit';
import { kafkaBrokers } from '../support/kafka.ts';

const PARTITIONS = 4;
const run = randomUUID().slice(0, 8);
const topic = `vigil.test.baselines.${run}`;
const group = `vigil-ingest-baselines-${run}`;
const MEMBER_SCRIPT = fileURLToPath(new URL('../support/ingest-members.ts', import.meta.url));

const DETECT = {
  off_hours: { enabled: false },
  long_session: { enabled: false },
  new_source: { min_history_sessions: 6, kinds: ['addr'] },
  rare_access: { min_history_statements: 10 },
  // Window only: no per-query or per-hour baseline can be established from a few hours of history.
  bulk_read: { max_rows_per_query: 1_000_000, max_rows_per_window: 5000, baseline_min_hours: 100_000 },
};

const partitioner = Partitioners.DefaultPartitioner();
const metadata = Array.from({ length: PARTITIONS }, (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
const partitionOf = (key: string): number => partitioner({ topic, partitionMetadata: metadata, message: { key, value: null } });
/** A session id (the record key) whose partition is one of `partitions`. */
function keyOn(prefix: string, partitions: number[]): string {
  for (let i = 0; ; i++) {
    const key = `${prefix}-${run}-${i}`;
    if (partitions.includes(partitionOf(key))) return key;
  }
}

/** The child process running the members; what each member acknowledged, by session key. */
class Members {
  readonly consumed: Map<string, number>[] = [new Map(), new Map()];
  readonly partitions: Set<number>[] = [new Set(), new Set()];
  private waiters: (() => void)[] = [];
  private stopped?: (stats: unknown) => void;
  private constructor(readonly child: ChildProcess, private out: string[]) {}

  static async start(args: Record<string, unknown>): Promise<Members> {
    const child = spawn(process.execPath, ['--import', 'tsx', MEMBER_SCRIPT, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: string[] = [];
    child.stderr!.on('data', (d) => out.push(String(d)));
    const m = new Members(child, out);
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`members exited (${code}): ${out.join('')}`))));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { op: string; member: number; partition: number; keys: Record<string, number>; stats: unknown };
      if (msg.op === 'ready') ready();
      else if (msg.op === 'consumed') {
        m.partitions[msg.member]!.add(msg.partition);
        for (const [k, n] of Object.entries(msg.keys)) m.consumed[msg.member]!.set(k, (m.consumed[msg.member]!.get(k) ?? 0) + n);
        for (const w of m.waiters.splice(0)) w();
      } else if (msg.op === 'stopped') m.stopped?.(msg.stats);
    });
    await Promise.race([isReady, exited]);
    return m;
  }

  /** Which members acknowledged records of `key`. */
  owners(key: string): number[] {
    return [0, 1].filter((i) => this.consumed[i]!.has(key));
  }

  /** Wait until every session's records were acknowledged (by whichever member). */
  async until(sessions: BuiltSession[], timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const done = () => sessions.every((s) => Math.max(...this.consumed.map((c) => c.get(s.session_id) ?? 0)) >= s.records.length);
    while (!done()) {
      assert.ok(Date.now() < deadline, `sessions not ingested in time: ${sessions.filter((s) => !this.owners(s.session_id).length).map((s) => s.session_id)}\n${this.out.join('')}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 500);
      });
    }
  }

  async stop(): Promise<unknown> {
    const stats = new Promise((r) => (this.stopped = r));
    this.child.stdin!.write('stop\n');
    const code = await new Promise<number | null>((r) => this.child.once('exit', r));
    assert.equal(code, 0, this.out.join(''));
    return stats;
  }
}

async function send(producer: Producer, sessions: BuiltSession[]): Promise<void> {
  const records: LogRecord[] = sessions.flatMap((s) => s.records);
  await producer.send(topic, records);
}

/**
 * Until both members own partitions: probe every partition, see who consumes each probe; two
 * rounds in a row with the same owners (and both members among them) mean the group is settled.
 */
async function settle(members: Members, producer: Producer, phase: string): Promise<number[][]> {
  let previous = '';
  for (let round = 0; round < 60; round++) {
    const probes = Array.from({ length: PARTITIONS }, (_, p) => buildSession(keyOn(`probe-${phase}-${round}-p${p}`, [p]), { sub: `probe-${run}` }, Date.UTC(2026, 0, 1) * 1000, []));
    await send(producer, probes);
    await members.until(probes);
    const owner = probes.map((s) => members.owners(s.session_id));
    if (owner.some((o) => o.length !== 1)) continue; // a rebalance moved one mid-round
    const byMember = [0, 1].map((m) => owner.flatMap((o, p) => (o[0] === m ? [p] : [])));
    const sig = JSON.stringify(byMember);
    if (byMember.every((ps) => ps.length > 0) && sig === previous) return byMember;
    previous = sig;
  }
  throw new Error('the consumer group did not settle with both members owning partitions');
}

const H = 3600e6;
const DAY = 24 * H;
/** Monday 2026-01-12 10:00 UTC. */
const MON10 = Date.UTC(2026, 0, 12, 10, 0, 0) * 1000;
const alice: Who = { sub: `alice-${run}`, groups: [`analysts-${run}`], addr: '10.0.0.7:5000', app: 'psql' };
const reads = (table: string, k: number, rows = 10): Step[] => Array.from({ length: k }, (_, i) => ({ q: `select * from ${table} where id = ${i}`, rows, after_s: 5 }));

test('two ingest members in one group share ClickHouse-held baselines, and the baselines survive a restart', { timeout: 600_000 }, async () => {
  const brokers = await kafkaBrokers();
  const admin = new KafkaEventLog({ brokers, client_id: `vigil-test-admin-${run}`, partitions: PARTITIONS });
  await admin.ensureTopics([topic]);
  const producer = admin.producer();
  const chdb = mkdtempSync(join(tmpdir(), 'vigil-baselines-'));
  const memberArgs = { brokers, topic, group, chdb, members: 2, detect: DETECT, run };
  try {
    // ---- phase 1: two members, one store --------------------------------------------------------
    const a = await Members.start(memberArgs);
    const own1 = await settle(a, producer, 'a');
    const history = [10, 7, 6, 5, 4, 3].map((d, i) =>
      buildSession(keyOn(`hist${i}`, own1[i % 2]!), alice, MON10 - d * DAY, [...reads('orders', 1), ...reads('customers', 1), ...reads('orders', 1)]),
    );
    await send(producer, history);
    await a.until(history);
    const histOwners = history.map((s) => a.owners(s.session_id));
    for (const m of [0, 1]) {
      const mine = histOwners.filter((o) => o.length === 1 && o[0] === m).length;
      assert.ok(mine >= 1 && mine < 6, `member ${m} ingested part of the history (${mine} of 6 sessions), not all of it`);
    }

    // Judged by each member: the verdicts need all six history sessions (both members' writes).
    const newAddr1 = buildSession(keyOn('newaddr1', own1[0]!), { ...alice, addr: '198.51.100.7:4000' }, MON10 - 2 * H, reads('orders', 1));
    const newTable1 = buildSession(keyOn('newtable1', own1[1]!), alice, MON10 - 90 * 60e6, [{ q: 'select * from payroll' }]);
    const twin1 = [0, 1].map((m) => buildSession(keyOn(`twin1-${m}`, own1[m]!), { ...alice, addr: '10.0.0.7:6001' }, MON10 - (80 - m) * 60e6, [...reads('customers', 1), ...reads('orders', 1)]));
    const bulk1 = buildSession(keyOn('bulk1', own1[0]!), alice, MON10 - 10 * 60e6, [{ q: 'select * from orders', rows: 6000 }]);
    const phase1 = [newAddr1, newTable1, ...twin1, bulk1];
    await send(producer, phase1);
    await a.until(phase1);
    assert.deepEqual(a.owners(newAddr1.session_id), [0]);
    assert.deepEqual(a.owners(newTable1.session_id), [1]);
    await a.stop();

    // ---- phase 2: a restart (new process, empty memory, chDB reopened from disk) ---------------
    const b = await Members.start(memberArgs);
    const own2 = await settle(b, producer, 'b');
    const newAddr2 = buildSession(keyOn('newaddr2', own2[1]!), { ...alice, addr: '203.0.113.9:4000' }, MON10 - 8 * 60e6, reads('orders', 1));
    const newTable2 = buildSession(keyOn('newtable2', own2[0]!), alice, MON10 - 7 * 60e6, [{ q: 'select * from salaries' }]);
    const twin2 = [0, 1].map((m) => buildSession(keyOn(`twin2-${m}`, own2[m]!), { ...alice, addr: '10.0.0.7:7001' }, MON10 - (6 - m) * 60e6, [...reads('customers', 1), { q: 'select * from payroll' }]));
    const bulk2 = buildSession(keyOn('bulk2', own2[1]!), alice, MON10 - 3 * 60e6, [{ q: 'select * from orders', rows: 6000 }]);
    const phase2 = [newAddr2, newTable2, ...twin2, bulk2];
    await send(producer, phase2);
    await b.until(phase2);
    const stats = (await b.stop()) as { suppressed: number }[];
    assert.ok(stats.reduce((n, s) => n + s.suppressed, 0) >= 1, `the repeated window bulk read was suppressed: ${JSON.stringify(stats)}`);

    // ---- what was stored ------------------------------------------------------------------------
    const store = await openStore({ kind: 'chdb', path: chdb });
    try {
      const r = await store.query({ query: 'SELECT rule, session_id FROM alerts FINAL WHERE sub = {sub:String} ORDER BY time', query_params: { sub: alice.sub }, format: 'JSONEachRow' });
      const alerts = await r.json<{ rule: string; session_id: string }>();
      const got = alerts.map((x) => `${x.rule} ${x.session_id}`).sort();
      const want = [
        `new_source.addr ${newAddr1.session_id}`,
        `rare_access ${newTable1.session_id}`,
        `bulk_read.window ${bulk1.session_id}`,
        `new_source.addr ${newAddr2.session_id}`,
        `rare_access ${newTable2.session_id}`,
      ].sort();
      const facts = await (await store.query({ query: "SELECT kind, sub, value, sum(n) AS n, min(first_seen) AS f FROM detect_facts WHERE sub IN ({sub:String}, {grp:String}) GROUP BY kind, sub, value ORDER BY kind, value", query_params: { sub: alice.sub, grp: alice.groups![0] }, format: 'JSONEachRow' })).json();
      const qs = await (await store.query({ query: "SELECT session_id, statement, count() AS c FROM queries WHERE sub = {sub:String} GROUP BY session_id, statement ORDER BY session_id", query_params: { sub: alice.sub }, format: 'JSONEachRow' })).json();
      assert.deepEqual(got, want, `queries: ${JSON.stringify(qs)}\nfacts: ${JSON.stringify(facts)}\n` + 'exactly these alerts: the twins (known host, known tables — payroll learned in phase 1) stay quiet; the second window bulk read is suppressed');
    } finally {
      await releaseStore(store);
    }
  } finally {
    await producer.close();
    await admin.close();
    rmSync(chdb, { recursive: true, force: true });
  }
});
