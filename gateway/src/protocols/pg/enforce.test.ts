/**
 * Integration: inline BLOCK against the real PostgreSQL at 127.0.0.1:5432 (trust) through the
 * gateway with a policy file. What the client sees is compared with what PostgreSQL itself sends
 * when a statement fails at the same protocol step.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { ChainedEvent, PolicyBlocked } from '@vigil/schemas';
import { startHarness, startPolicyHarness, connect, RawPg, wire, until, errorFields, sleep, type Harness, type PolicyHarness } from './testkit.ts';

const POLICY = `version: 1
rules:
  - id: agents-no-drop
    match: { actor_kind: agent, features: { any: [drop] } }
    block: true
  - id: agents-no-unbounded-dml
    match: { actor_kind: agent, features: { any: [dml_without_where] } }
    block: { message: Agents may not UPDATE or DELETE without WHERE }
  - id: agents-truncate-needs-approval
    match: { actor_kind: agent, features: { any: [truncate] } }
    require_approval: { approver_groups: [dba] }
`;

let ph: PolicyHarness;
let h: Harness;
let direct: pg.Client;

before(async () => {
  ph = await startPolicyHarness(POLICY);
  h = ph.h;
  direct = ph.direct;
});
after(async () => ph.close());

/** A fresh table with rows (0), owned by the test. */
const table = (): Promise<string> => ph.table('vigil_enf');
const ids = async (t: string): Promise<number[]> => (await direct.query(`SELECT id FROM ${t} ORDER BY id`)).rows.map((r) => r.id as number);
const exists = (t: string): Promise<boolean> => ph.exists(t);
const letters = (msgs: Buffer[]): string => msgs.map((m) => String.fromCharCode(m[0]!)).join('');
const status = (z: Buffer): string => String.fromCharCode(z[5]!);

async function login(sub: string, actor_kind: 'agent' | 'human' = 'agent'): Promise<RawPg> {
  return RawPg.login(h.port, sub, await h.issuer.mint(sub, { actor_kind }));
}
/** The same raw client, straight to PostgreSQL (trust), for "what PostgreSQL would send". */
async function loginDirect(): Promise<RawPg> {
  const c = await RawPg.open(5432);
  c.send(wire.startup({ user: 'postgres', database: 'postgres' }));
  await c.until('Z');
  return c;
}
async function blockedEvents(sub: string): Promise<PolicyBlocked[]> {
  await h.sink.drain();
  const sids = new Set(h.sessionsOf(sub));
  return h.events().filter((e): e is PolicyBlocked => e.type === 'policy.blocked' && sids.has(e.session_id));
}

test('simple query: a blocked DROP never reaches the target; 42501 names the rule; the session goes on', async () => {
  const t = await table();
  const c = await connect(h, 'agent-simple');
  await assert.rejects(c.query(`DROP TABLE ${t}`), (e: { code?: string; message: string }) => {
    assert.equal(e.code, '42501');
    assert.match(e.message, /policy rule "agents-no-drop"/);
    assert.doesNotMatch(e.message, /vigil_policy_block_/);
    return true;
  });
  assert.ok(await exists(t), 'table still exists');
  assert.equal((await c.query('SELECT 41 + 1 AS n')).rows[0].n, 42, 'session usable after the block');
  await c.end();

  const [sid] = h.sessionsOf('agent-simple');
  await until(() => h.session(sid!).events.some((e) => e.type === 'session.ended'), 5000, 'session.ended');
  const { events, chainOk } = h.session(sid!);
  assert.ok(chainOk);
  const i = events.findIndex((e) => e.type === 'policy.blocked');
  const blocked = events[i] as PolicyBlocked;
  assert.equal(blocked.rule_id, 'agents-no-drop');
  assert.equal(blocked.action, 'block');
  assert.equal(blocked.sqlstate, '42501');
  assert.equal(blocked.protocol_kind, 'simple');
  assert.equal(blocked.statement, `DROP TABLE ${t}`);
  assert.ok(blocked.features.includes('drop'));
  assert.deepEqual(blocked.relations, [t]);
  // The c2s frame just before is what the client sent (the original), the s2c error what it received.
  const q = events[i - 1]!;
  assert.ok(q.type === 'frame' && q.direction === 'c2s' && q.msg_type === 'Q' && Buffer.from(q.data).includes(`DROP TABLE ${t}`));
  const err = events.slice(i).find((e) => e.type === 'frame' && e.direction === 's2c' && e.msg_type === 'E');
  assert.ok(err && err.type === 'frame');
  assert.equal(errorFields(Buffer.from(err.data)).C, '42501');
  assert.ok(!Buffer.from(err.data).includes('vigil_policy_block_'), 'the substitute never shows');
});

test('multi-statement query with one blocked statement: nothing of it runs', async () => {
  const t = await table();
  const c = await connect(h, 'agent-multi');
  await assert.rejects(c.query(`INSERT INTO ${t} VALUES (1); DELETE FROM ${t}; INSERT INTO ${t} VALUES (2)`), (e: { code?: string; message: string }) => {
    assert.equal(e.code, '42501');
    assert.equal(e.message, 'Agents may not UPDATE or DELETE without WHERE (policy rule "agents-no-unbounded-dml")');
    return true;
  });
  assert.deepEqual(await ids(t), [0]);
  await c.end();
  const ev = await blockedEvents('agent-multi');
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.statement, `DELETE FROM ${t}`);
});

test('extended, pipelined: good P/B/E, blocked P/B/E, good P/B/E, one Sync — same messages as PostgreSQL for a failed Parse', async () => {
  const t = await table();
  const pipeline = (bad: string): Buffer =>
    Buffer.concat([
      wire.parse('', `INSERT INTO ${t} VALUES (10)`), wire.bind('', []), wire.execute(),
      wire.parse('', bad), wire.bind('', []), wire.execute(),
      wire.parse('', `INSERT INTO ${t} VALUES (11)`), wire.bind('', []), wire.execute(),
      wire.sync(),
    ]);
  const c = await login('agent-ext');
  c.send(pipeline(`DELETE FROM ${t}`));
  const got = await c.until('Z');
  // PostgreSQL itself, with a statement that fails at Parse in the same place:
  const d = await loginDirect();
  d.send(pipeline('SELECT * FROM vigil_no_such_table'));
  const want = await d.until('Z');
  assert.equal(letters(got), '12CEZ');
  assert.equal(letters(got), letters(want));
  assert.equal(status(got.at(-1)!), status(want.at(-1)!));
  const f = errorFields(got[3]!);
  assert.equal(f.C, '42501');
  assert.match(f.M!, /agents-no-unbounded-dml/);
  // The batch is one implicit transaction, rolled back by the error: as with PostgreSQL.
  assert.deepEqual(await ids(t), [0]);
  // Still in step: the next batch works.
  c.send(Buffer.concat([wire.parse('', 'SELECT 7'), wire.bind('', []), wire.execute(), wire.sync()]));
  assert.equal(letters(await c.until('Z')), '12DCZ');
  c.close();
  d.close();
  const ev = await blockedEvents('agent-ext');
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.protocol_kind, 'extended');
  assert.equal(ev[0]!.statement_name, '');
});

test('inside an explicit transaction: ReadyForQuery E after the block, 25P02 until ROLLBACK (simple and extended)', async () => {
  const t = await table();
  const c = await login('agent-tx');
  c.send(wire.query('BEGIN'));
  assert.equal(status((await c.until('Z')).at(-1)!), 'T');
  c.send(wire.query(`INSERT INTO ${t} VALUES (5)`));
  await c.until('Z');
  c.send(Buffer.concat([wire.parse('', `DROP TABLE ${t}`), wire.bind('', []), wire.execute(), wire.sync()]));
  const blocked = await c.until('Z');
  assert.equal(letters(blocked), 'EZ');
  assert.equal(errorFields(blocked[0]!).C, '42501');
  assert.equal(status(blocked[1]!), 'E');
  c.send(wire.query('SELECT 1'));
  const aborted = await c.until('Z');
  assert.equal(errorFields(aborted[0]!).C, '25P02');
  assert.equal(status(aborted.at(-1)!), 'E');
  // A blocked statement in the aborted transaction gets what PostgreSQL sends for any: 25P02.
  c.send(wire.query(`DELETE FROM ${t}`));
  assert.equal(errorFields((await c.until('Z'))[0]!).C, '25P02');
  c.send(wire.query('ROLLBACK'));
  assert.equal(status((await c.until('Z')).at(-1)!), 'I');
  // Simple protocol inside a transaction: the same failed-transaction state.
  c.send(wire.query('BEGIN'));
  await c.until('Z');
  c.send(wire.query(`DELETE FROM ${t}`));
  const simple = await c.until('Z');
  assert.equal(letters(simple), 'EZ');
  assert.equal(status(simple[1]!), 'E');
  c.send(wire.query('ROLLBACK'));
  await c.until('Z');
  c.close();
  assert.deepEqual(await ids(t), [0], 'the insert before the block was rolled back with the transaction');
  assert.ok(await exists(t));
});

test('a human is not blocked by the agent rules', async () => {
  const t = await table();
  const c = await connect(h, 'human-1', { password: await h.issuer.mint('human-1', { actor_kind: 'human' }) });
  const r = await c.query(`DELETE FROM ${t}`);
  assert.equal(r.rowCount, 1);
  await c.query(`DROP TABLE ${t}`);
  await c.end();
  assert.equal(await exists(t), false);
  assert.equal((await blockedEvents('human-1')).length, 0);
});

test('unparsable SQL on a governed target is blocked (humans too), with the parser error in DETAIL', async () => {
  const c = await login('human-2', 'human');
  c.send(wire.query('SELEC 1'));
  const got = await c.until('Z');
  assert.equal(letters(got), 'EZ');
  const f = errorFields(got[0]!);
  assert.equal(f.C, '42501');
  assert.match(f.M!, /could not be parsed/);
  assert.match(f.D!, /syntax error at or near "SELEC"/);
  c.send(Buffer.concat([wire.parse('', 'SELECT FROM WHERE'), wire.bind('', []), wire.execute(), wire.sync()]));
  const ext = await c.until('Z');
  assert.equal(letters(ext), 'EZ');
  assert.match(errorFields(ext[0]!).M!, /could not be parsed/);
  c.close();
  const ev = await blockedEvents('human-2');
  assert.equal(ev.length, 2);
  assert.equal(ev[0]!.reason, 'unparsable');
  assert.equal(ev[0]!.rule_id, null);
  assert.equal(ev[0]!.code, 'GW_ERR_POLICY_UNPARSABLE');
  assert.match(ev[0]!.parse_error ?? '', /syntax error/);
});

test('pipelined simple queries, two blocked: each gets its own error, in order', async () => {
  const t = await table();
  const c = await login('agent-pipe');
  c.send(Buffer.concat([wire.query(`DELETE FROM ${t}`), wire.query('SELECT 1'), wire.query(`DROP TABLE ${t}`), wire.query('SELECT 2')]));
  const all = [...(await c.until('Z')), ...(await c.until('Z')), ...(await c.until('Z')), ...(await c.until('Z'))];
  assert.equal(letters(all), 'EZTDCZEZTDCZ');
  assert.match(errorFields(all[0]!).M!, /agents-no-unbounded-dml/);
  assert.match(errorFields(all[6]!).M!, /agents-no-drop/);
  c.close();
  assert.ok(await exists(t));
});

test('hot reload: an invalid file keeps the policy; an allowing one lets the statement through; Bind re-evaluates prepared statements', async () => {
  const d2 = mkdtempSync(join(tmpdir(), 'vigil-enforce-reload-'));
  const file = join(d2, 'policy.yaml');
  writeFileSync(file, POLICY);
  const h2 = await startHarness({ policy_file: file });
  try {
    const t = await table();
    const c = await RawPg.login(h2.port, 'agent-r', await h2.issuer.mint('agent-r'));
    const run = async (sql: string): Promise<Buffer[]> => (c.send(wire.query(sql)), c.until('Z'));

    writeFileSync(file, 'version: 1\nrules: [ { id: x, match: { nope: 1 }, allow: true } ]\n');
    await until(() => h2.logs.some((l) => l.msg.startsWith('policy reload rejected')), 8000, 'rejected reload');
    const warn = h2.logs.find((l) => l.msg.startsWith('policy reload rejected'))!;
    assert.equal(warn.level, 'warn');
    assert.equal(warn.obj.code, 'GW_ERR_POLICY_INVALID');
    assert.equal(errorFields((await run(`DELETE FROM ${t}`))[0]!).C, '42501', 'old policy still in force');

    writeFileSync(file, 'version: 1\nrules: []\n');
    await until(() => h2.logs.some((l) => l.msg === 'policy reloaded'), 8000, 'reload');
    // Prepared while allowed:
    c.send(Buffer.concat([wire.parse('s1', `DELETE FROM ${t}`), wire.sync()]));
    assert.equal(letters(await c.until('Z')), '1Z');
    assert.equal(letters(await run(`INSERT INTO ${t} VALUES (3); UPDATE ${t} SET id = id + 1`)), 'CCZ', 'the same kind of statement now passes');
    assert.deepEqual(await ids(t), [1, 4]);

    writeFileSync(file, POLICY);
    await until(() => h2.logs.filter((l) => l.msg === 'policy reloaded').length >= 2, 8000, 'second reload');
    await sleep(10);
    c.send(Buffer.concat([wire.bind('s1', []), wire.execute(), wire.sync()]));
    const bound = await c.until('Z');
    assert.equal(letters(bound), 'EZ');
    assert.equal(errorFields(bound[0]!).C, '42501');
    assert.match(errorFields(bound[0]!).M!, /agents-no-unbounded-dml/);
    assert.deepEqual(await ids(t), [1, 4], 'the prepared DELETE did not run');
    c.close();
  } finally {
    await h2.close();
    rmSync(d2, { recursive: true, force: true });
  }
});

test('events validate: policy.blocked is a known chained event type', async () => {
  const { validateEvent } = await import('@vigil/schemas');
  const ev = await blockedEvents('agent-simple');
  assert.ok(ev.length >= 1);
  for (const e of ev as ChainedEvent[]) assert.deepEqual(validateEvent(e), []);
});

test('client_encoding: non-ASCII text is analysed only under a settled UTF8 encoding', async () => {
  const c = await login('agent-enc');
  const run = async (...sql: string[]): Promise<Buffer[]> => {
    c.send(Buffer.concat(sql.map((s) => wire.query(s))));
    const out: Buffer[] = [];
    for (const _ of sql) out.push(...(await c.until('Z')));
    return out;
  };
  assert.equal(letters(await run(`SELECT 'é' AS x`)), 'TDCZ', 'UTF8: analysed and allowed');
  // Pipelined behind an encoding change the gateway cannot yet see the outcome of: refused.
  const piped = await run(`SET client_encoding TO 'UTF8'`, `SELECT 'é' AS x`);
  assert.equal(letters(piped), 'CZEZ');
  assert.match(errorFields(piped[2]!).D!, /earlier statements may still change session settings/);
  assert.equal(letters(await run(`SELECT 'é' AS x`)), 'TDCZ', 'settled again');
  const latin = await run(`SET client_encoding TO 'LATIN1'`);
  assert.ok(latin.some((m) => m[0] === 0x53 && m.includes('LATIN1')), 'target reported the new encoding');
  const refused = await run(`SELECT 'é' AS x`);
  assert.equal(letters(refused), 'EZ');
  assert.match(errorFields(refused[0]!).D!, /client_encoding is not UTF8/);
  assert.equal(letters(await run(`SELECT 'e' AS x`)), 'TDCZ', 'ASCII reads the same in every encoding');
  c.close();
});

test('fast-path FunctionCall carries no SQL: blocked on a governed target', async () => {
  const c = await login('agent-fn');
  // FunctionCall: pg_backend_pid() (OID 2026), no argument formats, no arguments, text result.
  const body = Buffer.alloc(10);
  body.writeUInt32BE(2026, 0);
  const msg = Buffer.concat([Buffer.from([0x46, 0, 0, 0, 14]), body]);
  c.send(msg);
  const got = await c.until('Z');
  assert.equal(letters(got), 'EZ');
  assert.equal(errorFields(got[0]!).C, '42501');
  c.send(wire.query('SELECT 1'));
  assert.equal(letters(await c.until('Z')), 'TDCZ');
  c.close();
  const ev = await blockedEvents('agent-fn');
  assert.equal(ev[0]!.protocol_kind, 'function_call');
});

test('require_approval is enforced as a block until approvals exist, and says so', async () => {
  const t = await table();
  const c = await connect(h, 'agent-appr');
  await assert.rejects(c.query(`TRUNCATE ${t}`), (e: { code?: string; message: string }) => {
    assert.equal(e.code, '42501');
    assert.match(e.message, /requires approval under policy rule "agents-truncate-needs-approval".*cannot hold it for approval/);
    return true;
  });
  await c.end();
  assert.deepEqual(await ids(t), [0]);
  const ev = await blockedEvents('agent-appr');
  assert.equal(ev[0]!.action, 'require_approval');
  assert.equal(ev[0]!.rule_id, 'agents-truncate-needs-approval');
});
