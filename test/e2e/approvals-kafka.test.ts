/**
 * Just-in-time approval across processes on the real Kafka broker: two `vigil gateway` processes and
 * one `vigil api`, sharing one topic set. A statement held by gateway A is approved with the
 * `vigil approve` CLI (through the API); one held by gateway B is denied through the HTTP API. Each
 * decision reaches the process that holds the session, and only that one acts on it. Then, still
 * across processes: an admin's force override (flagged as such), an expiry, and a client's
 * CancelRequest while it waits.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { kafkaBrokers } from '../support/kafka.ts';
import { startVigil, type VigilProcess, tempDir } from '../support/vigil-process.ts';
import { RawPg, wire, errorFields } from '@vigil/gateway/protocols/pg/testkit';
import net from 'node:net';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = randomUUID().slice(0, 8);
let gwA: VigilProcess;
let gwB: VigilProcess;
let api: VigilProcess;
let direct: pg.Client;
let approver: string;

const POLICY = `version: 1
rules:
  - id: truncate-needs-approval
    match: { features: { any: [truncate] } }
    require_approval: { approver_groups: [dba], timeout_s: 120 }
  - id: delete-expires-fast
    match: { features: { any: [dml_without_where] }, relations: ['exp_*'] }
    require_approval: { approver_groups: [dba], timeout_s: 3 }
`;

before(async () => {
  const brokers = await kafkaBrokers();
  const dir = tempDir('vigil-appr-e2e-');
  const policy_file = join(dir, 'policy.yaml');
  writeFileSync(policy_file, POLICY);
  const common = {
    mode: 'distributed',
    dev_issuer: { enabled: true, dir: join(dir, 'issuer') },
    log: { kind: 'kafka', kafka: { brokers, client_id: `vigil-appr-${run}` } },
  };
  [gwA, gwB] = await Promise.all([
    startVigil({ command: 'gateway', gatewayId: `gw-a-${run}`, config: { ...common, gateway: { policy_file } } }),
    startVigil({ command: 'gateway', gatewayId: `gw-b-${run}`, config: { ...common, gateway: { policy_file } } }),
  ]);
  api = await startVigil({ command: 'api', ready: 'api', config: common });
  approver = await api.token('bob', { roles: ['approver'], groups: ['dba'] });
  direct = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await direct.connect();
});

after(async () => {
  await direct?.end();
  await Promise.all([gwA?.stop(), gwB?.stop(), api?.stop()]);
});

async function table(name: string): Promise<string> {
  const t = `${name}_${run.replace(/-/g, '')}`;
  await direct.query(`CREATE TABLE ${t} (id int); INSERT INTO ${t} VALUES (1), (2)`);
  return t;
}
const count = async (t: string) => Number((await direct.query(`SELECT count(*)::int AS n FROM ${t}`)).rows[0].n);

async function pendingOf(sub: string): Promise<{ approval_id: string; gateway_id: string; statement: string }> {
  const end = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${api.apiPort}/api/approvals?state=pending`, { headers: { authorization: `Bearer ${approver}` } });
    assert.equal(res.status, 200);
    const item = ((await res.json()) as { items: { approval_id: string; sub: string; gateway_id: string; statement: string }[] }).items.find((i) => i.sub === sub);
    if (item) return item;
    if (Date.now() > end) throw new Error(`no pending approval for ${sub}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `vigil approve|deny …` as an approver types it; resolves with exit code and output. */
function vigil(args: string[], token: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [join(ROOT, 'bin/vigil.mjs'), ...args, '--config', api.configFile], { cwd: ROOT, env: { ...process.env, VIGIL_TOKEN: token } });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('exit', (code) => resolve({ code, out }));
  });
}

async function client(gw: VigilProcess, sub: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: gw.gatewayPort, user: sub, database: 'local-pg', password: await gw.token(sub, { groups: ['dba'] }) });
  c.on('error', () => {});
  await c.connect();
  return c;
}

test('two gateways on one Kafka: each decision reaches the process holding the session', async () => {
  const ta = await table('appr_a');
  const tb = await table('appr_b');
  const a = await client(gwA, `alice-${run}`);
  const b = await client(gwB, `ben-${run}`);
  const doneA = a.query(`TRUNCATE ${ta}`).then(() => 'ok', (e: Error) => e.message);
  const doneB = b.query(`TRUNCATE ${tb}`).then(() => 'ok', (e: { code?: string; message: string }) => `${e.code}: ${e.message}`);
  const reqA = await pendingOf(`alice-${run}`);
  const reqB = await pendingOf(`ben-${run}`);
  assert.equal(reqA.gateway_id, `gw-a-${run}`);
  assert.equal(reqB.gateway_id, `gw-b-${run}`);

  // The requester (also in dba) cannot approve their own statement, through the CLI either.
  const self = await vigil(['approve', reqA.approval_id, '--reason', 'mine'], await api.token(`alice-${run}`, { roles: ['approver'], groups: ['dba'] }));
  assert.equal(self.code, 77, self.out);
  assert.match(self.out, /GW_ERR_APPROVAL_SELF/);

  const ok = await vigil(['approve', reqA.approval_id, '--reason', 'CHG-7 reviewed'], approver);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /approval\.decided published/);
  assert.equal(await doneA, 'ok');
  assert.equal(await count(ta), 0);
  assert.equal(await count(tb), 2, "B's statement still waits: A's decision did not release it");

  const res = await fetch(`http://127.0.0.1:${api.apiPort}/api/approvals/${reqB.approval_id}/decision`, {
    method: 'POST',
    headers: { authorization: `Bearer ${approver}`, 'content-type': 'application/json' },
    body: JSON.stringify({ decision: 'deny', reason: 'not in the change window' }),
  });
  assert.equal(res.status, 202);
  assert.match(await doneB, /^42501: statement denied under policy rule "truncate-needs-approval".*by bob: not in the change window/);
  assert.equal(await count(tb), 2);
  assert.equal((await b.query('SELECT 1 AS one')).rows[0].one, 1, 'the denied session goes on');

  // The API learns each outcome from the gateways' mirrors.
  const end = Date.now() + 30_000;
  for (;;) {
    const get = async (id: string) => ((await (await fetch(`http://127.0.0.1:${api.apiPort}/api/approvals/${id}`, { headers: { authorization: `Bearer ${approver}` } })).json()) as { state: string }).state;
    const [sa, sb] = [await get(reqA.approval_id), await get(reqB.approval_id)];
    if (sa === 'approved' && sb === 'denied') break;
    if (Date.now() > end) assert.fail(`states ${sa}/${sb}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const listed = await vigil(['approvals', '--state', 'all'], approver);
  assert.equal(listed.code, 0, listed.out);
  assert.match(listed.out, new RegExp(`${reqA.approval_id}  approved`));
  await a.end();
  await b.end();
});

async function stateOf(id: string): Promise<{ state: string; decisions: { sub: string; override?: string }[] }> {
  const res = await fetch(`http://127.0.0.1:${api.apiPort}/api/approvals/${id}`, { headers: { authorization: `Bearer ${approver}` } });
  return (await res.json()) as { state: string; decisions: { sub: string; override?: string }[] };
}

async function untilState(id: string, state: string): Promise<{ state: string; decisions: { sub: string; override?: string }[] }> {
  const end = Date.now() + 30_000;
  for (;;) {
    const s = await stateOf(id);
    if (s.state === state) return s;
    if (Date.now() > end) assert.fail(`approval ${id} is ${s.state}, not ${state}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('across processes: an admin force override runs the statement and is flagged; the other gateway ignores it', async () => {
  const t = await table('appr_force');
  const c = await client(gwB, `fran-${run}`);
  const done = c.query(`TRUNCATE ${t}`).then(() => 'ok', (e: Error) => e.message);
  const req = await pendingOf(`fran-${run}`);
  assert.equal(req.gateway_id, `gw-b-${run}`);
  const admin = await api.token('root', { roles: ['admin'] });
  const res = await fetch(`http://127.0.0.1:${api.apiPort}/api/approvals/${req.approval_id}/decision`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ decision: 'approve', reason: 'INC-77 outage', override: 'force' }),
  });
  assert.equal(res.status, 202);
  assert.equal(((await res.json()) as { type: string }).type, 'approval.override');
  assert.equal(await done, 'ok');
  assert.equal(await count(t), 0);
  const s = await untilState(req.approval_id, 'approved');
  assert.deepEqual(s.decisions.map((d) => [d.sub, d.override]), [['root', 'force']]);
  await c.end();
});

test('across processes: no decision within timeout_s expires the statement', async () => {
  const t = await table('exp_rows');
  const c = await client(gwA, `erin-${run}`);
  const err = await c.query(`DELETE FROM ${t}`).then(() => undefined, (e: { code?: string; message: string }) => e);
  assert.equal(err?.code, '42501');
  assert.match(err!.message, /no approval decision within 3 s under policy rule "delete-expires-fast"/);
  assert.equal(await count(t), 2);
  // Expired requests are no longer pending: found among all, in state expired.
  const res = await fetch(`http://127.0.0.1:${api.apiPort}/api/approvals?state=all`, { headers: { authorization: `Bearer ${approver}` } });
  const item = ((await res.json()) as { items: { approval_id: string; sub: string }[] }).items.find((i) => i.sub === `erin-${run}`)!;
  await untilState(item.approval_id, 'expired');
  const pending = await fetch(`http://127.0.0.1:${api.apiPort}/api/approvals?state=pending`, { headers: { authorization: `Bearer ${approver}` } });
  assert.ok(!((await pending.json()) as { items: { sub: string }[] }).items.some((i) => i.sub === `erin-${run}`), 'not listed as pending');
  await c.end();
});

test('across processes: a CancelRequest while the statement waits ends it with 57014; nothing ran', async () => {
  const t = await table('appr_cancel');
  const sub = `cora-${run}`;
  const c = await RawPg.login(gwA.gatewayPort, sub, await gwA.token(sub, { groups: ['dba'] }), 'local-pg');
  c.send(wire.query(`TRUNCATE ${t}`));
  const req = await pendingOf(sub);
  const cancel = Buffer.alloc(16);
  cancel.writeUInt32BE(16, 0);
  cancel.writeUInt32BE(80877102, 4);
  cancel.writeUInt32BE(c.key!.pid, 8);
  c.key!.secret.copy(cancel, 12);
  const s = net.connect(gwA.gatewayPort, '127.0.0.1');
  await new Promise<void>((r) => s.once('connect', r));
  s.end(cancel);
  const msgs = await c.until('Z', 30_000);
  assert.equal(errorFields(msgs.find((m) => m[0] === 0x45)!).C, '57014');
  assert.equal(await count(t), 2);
  await untilState(req.approval_id, 'cancelled');
  c.close();
});
