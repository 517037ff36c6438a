/**
 * Just-in-time approval through the real gateway against the real PostgreSQL, with the decisions
 * travelling on a real (local, durable) event log's control topic, as the API publishes them.
 * Two gateway processes on Kafka: test/e2e/approvals-kafka.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { Topics, type EventLog } from '@vigil/eventlog';
import { nowUs, type ApprovalDecided, type ApprovalOverride, type ApprovalRequested, type ApprovalResolved, type ChainedEvent } from '@vigil/schemas';
import { ApprovalBroker } from '../../approvals/broker.ts';
import { encodeDecision } from '../../approvals/control.ts';
import { silentLogger } from '../../logger.ts';
import { startPolicyHarness, connect, RawPg, wire, until, errorFields, type PolicyHarness } from './testkit.ts';

const POLICY = `version: 1
rules:
  - id: truncate-needs-approval
    match: { features: { any: [truncate] } }
    require_approval: { approver_groups: [dba], timeout_s: 30 }
  - id: delete-needs-two
    match: { features: { any: [dml_without_where] }, relations: ['two_*'] }
    require_approval: { approver_groups: [dba], min_approvers: 2, timeout_s: 30 }
  - id: update-expires-fast
    match: { features: { any: [dml_without_where] }, relations: ['fast_*'] }
    require_approval: { approver_groups: [dba], timeout_s: 1 }
  - id: no-drop
    match: { features: { any: [drop] } }
    block: true
`;

let dir: string;
let log: EventLog;
let broker: ApprovalBroker;
let ph: PolicyHarness;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-approval-'));
  log = await LocalEventLog.open({ dir, fsync: 'never' });
  const producer = log.producer();
  broker = await ApprovalBroker.start({ log, producer, gatewayId: 'gw-test', logger: silentLogger });
  ph = await startPolicyHarness(POLICY, { approvals: broker });
});
after(async () => {
  await ph.close();
  await broker.close();
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

type Decider = { sub: string; groups: string[] };
const BOB: Decider = { sub: 'bob', groups: ['dba'] };
const CAROL: Decider = { sub: 'carol', groups: ['dba'] };

/** Publish a decision the way the API does. */
async function decide(approval_id: string, session_id: string, who: Decider, decision: 'approve' | 'deny', reason = 'checked the change ticket'): Promise<void> {
  const d: ApprovalDecided = { type: 'approval.decided', version: 1, event_id: randomUUID(), time: nowUs(), approval_id, session_id, sub: who.sub, groups: who.groups, reason, via: 'test', decision };
  await log.producer().send(Topics.approvals, [encodeDecision(d)]);
}

async function override(approval_id: string, session_id: string, who: Decider, kind: 'force' | 'break_glass'): Promise<void> {
  const d: ApprovalOverride = { type: 'approval.override', version: 1, event_id: randomUUID(), time: nowUs(), approval_id, session_id, sub: who.sub, groups: who.groups, reason: 'incident 42: production down', via: 'test', kind };
  await log.producer().send(Topics.approvals, [encodeDecision(d)]);
}

/** The approval.requested event the gateway recorded for `sub`'s latest hold. */
async function requested(sub: string, after = 0): Promise<ApprovalRequested> {
  return until(() => ph.h.events().filter((e): e is ApprovalRequested & ChainedEvent => e.type === 'approval.requested' && e.sub === sub).slice(after)[0], 10_000, `approval.requested of ${sub}`);
}

function resolvedOf(approval_id: string): ApprovalResolved | undefined {
  return ph.h.events().find((e): e is ApprovalResolved & ChainedEvent => e.type === 'approval.resolved' && e.approval_id === approval_id);
}

async function count(table: string): Promise<number> {
  return Number((await ph.direct.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n);
}

test('approve: the held statement runs after the decision; the chain records request and outcome', async () => {
  const t = await ph.table('appr_ok', [1, 2, 3]);
  const c = await connect(ph.h, 'alice', { password: await ph.h.issuer.mint('alice', { groups: ['dev'] }) });
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? ''));
  const pending = c.query(`TRUNCATE ${t}`);
  const req = await requested('alice');
  assert.equal(req.rule_id, 'truncate-needs-approval');
  assert.equal(req.statement, `TRUNCATE ${t}`);
  assert.deepEqual(req.approver_groups, ['dba']);
  assert.equal(req.protocol_kind, 'simple');
  assert.equal(await count(t), 3, 'nothing ran while it waits');
  await until(() => notices.length > 0, 5000, 'the waiting notice');
  assert.match(notices[0]!, new RegExp(`needs approval under policy rule "truncate-needs-approval" \\(approval ${req.approval_id}\\)`));
  await decide(req.approval_id, req.session_id, BOB, 'approve');
  const r = await pending;
  assert.equal(r.command, 'TRUNCATE');
  assert.equal(await count(t), 0);
  assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'the session goes on');
  await c.end();
  const resolved = await until(() => resolvedOf(req.approval_id), 5000, 'approval.resolved');
  assert.equal(resolved.outcome, 'approved');
  assert.deepEqual(resolved.decisions.map((d) => [d.sub, d.decision]), [['bob', 'approve']]);
  const s = await until(() => { const x = ph.h.session(req.session_id); return x.events.some((e) => e.type === 'session.ended') && x; }, 5000, 'session end');
  assert.ok(s.chainOk, s.problem);
  const types = s.events.map((e) => e.type);
  assert.ok(types.indexOf('approval.requested') < types.indexOf('approval.resolved'));
});

test('deny: the client gets 42501 naming the approver and reason; nothing ran; the session goes on', async () => {
  const t = await ph.table('appr_deny', [1]);
  const c = await connect(ph.h, 'dana');
  const pending = c.query(`TRUNCATE ${t}`).then(() => undefined, (e: { code?: string; message: string }) => e);
  const req = await requested('dana');
  await decide(req.approval_id, req.session_id, BOB, 'deny', 'not during the freeze');
  const err = await pending;
  assert.equal(err?.code, '42501');
  assert.match(err!.message, /denied under policy rule "truncate-needs-approval".*by bob: not during the freeze/);
  assert.equal(await count(t), 1);
  assert.equal((await c.query('SELECT 2 AS two')).rows[0].two, 2);
  await c.end();
  assert.equal((await until(() => resolvedOf(req.approval_id))).outcome, 'denied');
});

test('expire: no decision within timeout_s is a denial', async () => {
  const t = await ph.table('fast_tbl', [1, 2]);
  const c = await connect(ph.h, 'erin');
  const err = await c.query(`DELETE FROM ${t}`).then(() => undefined, (e: { code?: string; message: string }) => e);
  assert.equal(err?.code, '42501');
  assert.match(err!.message, /no approval decision within 1 s under policy rule "update-expires-fast"/);
  assert.equal(await count(t), 2);
  const req = await requested('erin');
  assert.equal((await until(() => resolvedOf(req.approval_id))).outcome, 'expired');
  // A decision after expiry changes nothing.
  await decide(req.approval_id, req.session_id, BOB, 'approve');
  assert.equal((await c.query('SELECT 3 AS n')).rows[0].n, 3);
  assert.equal(await count(t), 2);
  await c.end();
});

test('self-approval is refused; a second approver of two is needed; duplicate votes do not count', async () => {
  const t = await ph.table('two_rows', [1, 2]);
  // frank is himself in the approver group: his own approval must not count.
  const c = await connect(ph.h, 'frank', { password: await ph.h.issuer.mint('frank', { groups: ['dba'] }) });
  const pending = c.query(`DELETE FROM ${t}`);
  const req = await requested('frank');
  assert.equal(req.min_approvers, 2);
  await decide(req.approval_id, req.session_id, { sub: 'frank', groups: ['dba'] }, 'approve');
  await decide(req.approval_id, req.session_id, BOB, 'approve');
  await decide(req.approval_id, req.session_id, BOB, 'approve');
  await decide(req.approval_id, req.session_id, { sub: 'mallory', groups: ['dev'] }, 'approve');
  await until(() => broker.stats.refused_decisions >= 3, 5000, 'three refused decisions');
  assert.equal(await count(t), 2, 'still waiting after self, duplicate and non-approver votes');
  await decide(req.approval_id, req.session_id, CAROL, 'approve');
  assert.equal((await pending).rowCount, 2);
  const resolved = await until(() => resolvedOf(req.approval_id));
  assert.deepEqual(resolved.decisions.map((d) => d.sub), ['bob', 'carol']);
  await c.end();
});

test('override (force, break_glass) approves at once and is flagged in the outcome', async () => {
  for (const kind of ['force', 'break_glass'] as const) {
    const t = await ph.table(`appr_${kind}`, [1]);
    const sub = `gina-${kind.replace('_', '')}`;
    const c = await connect(ph.h, sub);
    const pending = c.query(`TRUNCATE ${t}`);
    const req = await requested(sub);
    await override(req.approval_id, req.session_id, kind === 'force' ? { sub: 'root-admin', groups: [] } : { sub, groups: [] }, kind);
    await pending;
    assert.equal(await count(t), 0);
    const resolved = await until(() => resolvedOf(req.approval_id));
    assert.equal(resolved.outcome, 'approved');
    assert.equal(resolved.decisions[0]!.override, kind);
    await c.end();
  }
});

test('extended protocol and transactions: a denied Bind leaves the failed-transaction state PostgreSQL would give', async () => {
  const t = await ph.table('appr_tx', [1, 2]);
  const c = await connect(ph.h, 'hank');
  await c.query('BEGIN');
  const pending = c.query({ name: 'trunc-a', text: `TRUNCATE ${t}` }).then(() => undefined, (e: { code?: string }) => e);
  // A named query goes Parse/Bind/Describe/Execute/Sync: the Parse passes, the Bind waits.
  const req = await requested('hank');
  assert.equal(req.protocol_kind, 'extended');
  await decide(req.approval_id, req.session_id, BOB, 'deny', 'no');
  assert.equal((await pending)?.code, '42501');
  const next = await c.query('SELECT 1').then(() => undefined, (e: { code?: string }) => e);
  assert.equal(next?.code, '25P02', 'in a failed transaction, as after any error');
  await c.query('ROLLBACK');
  // Approved in extended protocol inside a transaction (the prepared statement reused): runs, commits.
  await c.query('BEGIN');
  const ok = c.query({ name: 'trunc-a', text: `TRUNCATE ${t}` });
  const req2 = await requested('hank', 1);
  await decide(req2.approval_id, req2.session_id, BOB, 'approve');
  await ok;
  await c.query('COMMIT');
  assert.equal(await count(t), 0);
  await c.end();
});

test('pipelined: messages sent behind a held query wait and then run in order', async () => {
  const t = await ph.table('appr_pipe', [1, 2, 3]);
  const c = await RawPg.login(ph.h.port, 'ivan', await ph.h.issuer.mint('ivan'));
  c.send(Buffer.concat([wire.query(`TRUNCATE ${t}`), wire.query(`SELECT count(*) FROM ${t}`)]));
  const req = await requested('ivan');
  await decide(req.approval_id, req.session_id, BOB, 'deny', 'pipelined deny');
  const first = await c.until('Z');
  const e = first.find((m) => m[0] === 0x45)!;
  assert.equal(errorFields(e).C, '42501');
  assert.ok(first.some((m) => m[0] === 0x4e), 'the waiting notice came first');
  const second = await c.until('Z');
  const row = second.find((m) => m[0] === 0x44)!;
  assert.equal(row.toString('utf8', 11), '3', 'the query behind it ran after, on the untouched table');
  c.send(wire.terminate());
  c.close();
});

test('cancel while waiting: CancelRequest ends the wait with 57014; the target ran nothing', async () => {
  const t = await ph.table('appr_cancel', [1]);
  const c = await RawPg.login(ph.h.port, 'judy', await ph.h.issuer.mint('judy'));
  c.send(wire.query(`TRUNCATE ${t}`));
  const req = await requested('judy');
  const cancel = Buffer.alloc(16);
  cancel.writeUInt32BE(16, 0);
  cancel.writeUInt32BE(80877102, 4);
  cancel.writeUInt32BE(c.key!.pid, 8);
  c.key!.secret.copy(cancel, 12);
  const s = net.connect(ph.h.port, '127.0.0.1');
  await new Promise<void>((r) => s.once('connect', r));
  s.end(cancel);
  const msgs = await c.until('Z');
  const e = msgs.find((m) => m[0] === 0x45)!;
  assert.equal(errorFields(e).C, '57014');
  assert.equal(errorFields(e).M, 'canceling statement due to user request');
  assert.equal(await count(t), 1);
  assert.equal((await until(() => resolvedOf(req.approval_id))).outcome, 'cancelled');
  c.send(wire.query('SELECT 1'));
  assert.ok((await c.until('Z')).some((m) => m[0] === 0x44), 'the session goes on');
  c.close();
});

test('the session closing while it waits records the outcome before session.ended', async () => {
  const t = await ph.table('appr_close', [1]);
  const c = await RawPg.login(ph.h.port, 'kim', await ph.h.issuer.mint('kim'));
  c.send(wire.query(`TRUNCATE ${t}`));
  const req = await requested('kim');
  c.close();
  const s = await until(() => { const x = ph.h.session(req.session_id); return x.events.some((e) => e.type === 'session.ended') && x; }, 5000, 'session end');
  assert.ok(s.chainOk, s.problem);
  const types = s.events.map((e) => e.type);
  assert.equal(types.at(-2), 'approval.resolved');
  assert.equal(resolvedOf(req.approval_id)?.outcome, 'closed');
  // Deciding now is harmless.
  await decide(req.approval_id, req.session_id, BOB, 'approve');
  assert.equal(await count(t), 1);
});

test('a block still wins over an approval in the same query', async () => {
  const t = await ph.table('appr_mix', [1]);
  const c = await connect(ph.h, 'leo');
  const err = await c.query(`TRUNCATE ${t}; DROP TABLE ${t}`).then(() => undefined, (e: { message: string }) => e);
  assert.match(err!.message, /no-drop/);
  assert.equal(ph.h.events().filter((e) => e.type === 'approval.requested' && e.sub === 'leo').length, 0);
  await c.end();
});
