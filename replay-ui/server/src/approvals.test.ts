/**
 * The approvals API over a real local event log (the control topic) and a real verifier: what a
 * gateway mirrors becomes a pending request; decisions are checked with the gateway's rules and
 * published for the gateway to apply. The gateway side: gateway/src/protocols/pg/approval.test.ts;
 * across processes on Kafka: test/e2e/approvals-kafka.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { openDevIssuer, type DevIssuer } from '@vigil/identity/dev-issuer';
import { createVerifier } from '@vigil/identity/verifier';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { Topics, type ConsumedRecord, type EventLog } from '@vigil/eventlog';
import { SessionChain, decode, nowUs, type ApprovalRefused, type ChainedEvent } from '@vigil/schemas';
import { decodeControlRecord } from '@vigil/gateway/approvals/control';
import { buildApi } from './app.ts';
import { ApprovalBook } from './approvals-book.ts';
import { createAccessAudit, type AccessAudit } from './access-audit.ts';

const ISSUER = 'http://127.0.0.1:8480';
let dir: string;
let store: ClickHouseClient;
let issuer: DevIssuer;
let log: EventLog;
let book: ApprovalBook;
let app: FastifyInstance;
let audit: AccessAudit;
const tok: Record<string, string> = {};
const auth = (who: string) => ({ authorization: `Bearer ${tok[who]}` });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-api-appr-'));
  store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
  await applyDdl(store);
  issuer = await openDevIssuer({ dir: join(dir, 'issuer'), issuer: ISSUER });
  const mint = (sub: string, roles: string[], groups: string[]) => issuer.mint({ sub, roles, groups, ttl_s: 600, audience: 'vigil' });
  tok.bob = await mint('bob', ['approver'], ['dba']);
  tok.carol = await mint('carol', ['approver'], ['dba']);
  tok.alice = await mint('alice', ['approver'], ['dba']); // the requester, an approver herself
  tok.dev = await mint('dev-1', ['approver'], ['dev']);
  tok.analyst = await mint('ann', ['analyst'], ['dba']);
  tok.auditor = await mint('aud', ['auditor'], []);
  tok.admin = await mint('root', ['admin'], []);
  log = await LocalEventLog.open({ dir: join(dir, 'log'), fsync: 'never' });
  book = await ApprovalBook.open(log);
  await log.ensureTopics([Topics.frames]);
  audit = createAccessAudit(log.producer(), { api_id: 'api-test', version: '0.1.0' });
  app = await buildApi({ config: {}, verifier: createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file }), store, approvals: book, audit });
  await app.ready();
});

after(async () => {
  await app?.close();
  await audit?.close();
  await book?.close();
  await log?.close();
  if (store) await releaseStore(store);
  rmSync(dir, { recursive: true, force: true });
});

/** Mirror a request as a gateway does (a sealed chain record on the control topic). */
async function request(over: { min_approvers?: number; expires_in_s?: number } = {}): Promise<string> {
  const approval_id = randomUUID();
  const chain = new SessionChain(randomUUID(), { gateway_id: 'gw-a', gateway_version: '0.1.0' });
  const rec = chain.next({
    type: 'approval.requested', version: 1, sub: 'alice', groups: ['dba'], actor_kind: 'human', target_id: 'main', protocol: 'postgres',
    approval_id, rule_id: 'truncate-needs-approval', approver_groups: ['dba'], min_approvers: over.min_approvers ?? 1, allow_self_approval: false,
    expires_at: nowUs() + (over.expires_in_s ?? 300) * 1_000_000, protocol_kind: 'simple', statement: 'TRUNCATE orders', features: ['truncate', 'ddl'], relations: ['orders'],
  });
  await log.producer().send(Topics.approvals, [{ key: approval_id, value: rec.bytes, headers: { type: 'approval.requested' } }]);
  await waitFor(async () => (await app.inject({ url: `/api/approvals/${approval_id}`, headers: auth('bob') })).statusCode === 200);
  return approval_id;
}

async function waitFor(fn: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Records of the frames topic (the API's own chain is there), in order. */
async function frames(): Promise<ConsumedRecord[]> {
  const out: ConsumedRecord[] = [];
  const c = log.consumer({ groupId: `probe-${randomUUID()}`, topics: [Topics.frames], fromBeginning: true });
  await c.run(async (b) => void out.push(...b.records));
  await new Promise((r) => setTimeout(r, 200));
  await c.stop();
  return out;
}

/** Decision records on the control topic, in order. */
async function published(): Promise<ReturnType<typeof decodeControlRecord>[]> {
  const out: ConsumedRecord[] = [];
  const c = log.consumer({ groupId: `probe-${randomUUID()}`, topics: [Topics.approvals], fromBeginning: true });
  await c.run(async (b) => void out.push(...b.records));
  await new Promise((r) => setTimeout(r, 200));
  await c.stop();
  return out.filter((r) => r.headers?.enc === 'json').map((r) => decodeControlRecord(r.value, r.headers));
}

const decide = (id: string, who: string, body: Record<string, unknown>) =>
  app.inject({ method: 'POST', url: `/api/approvals/${id}/decision`, headers: auth(who), payload: body });

test('a mirrored request is listed as pending with who, what, target, rule and expiry', async () => {
  const id = await request();
  const res = await app.inject({ url: '/api/approvals?state=pending', headers: auth('auditor') });
  assert.equal(res.statusCode, 200);
  const item = res.json().items.find((i: { approval_id: string }) => i.approval_id === id);
  assert.equal(item.sub, 'alice');
  assert.equal(item.statement, 'TRUNCATE orders');
  assert.equal(item.target_id, 'main');
  assert.equal(item.rule_id, 'truncate-needs-approval');
  assert.equal(item.state, 'pending');
  assert.ok(Date.parse(item.expires_at) > Date.now());
});

test('roles: analysts cannot see or decide; auditors see but cannot decide', async () => {
  const id = await request();
  assert.equal((await app.inject({ url: '/api/approvals', headers: auth('analyst') })).statusCode, 403);
  assert.equal((await decide(id, 'analyst', { decision: 'approve', reason: 'looks fine' })).statusCode, 403);
  assert.equal((await decide(id, 'auditor', { decision: 'approve', reason: 'looks fine' })).statusCode, 403);
  assert.equal((await app.inject({ method: 'POST', url: `/api/approvals/${id}/decision`, payload: { decision: 'approve', reason: 'x' } })).statusCode, 401);
});

test('self-approval and approvers outside the rule\'s groups are refused and never published', async () => {
  const id = await request();
  const self = await decide(id, 'alice', { decision: 'approve', reason: 'my own change' });
  assert.equal(self.statusCode, 403);
  assert.match(self.json().detail, /GW_ERR_APPROVAL_SELF/);
  const outsider = await decide(id, 'dev', { decision: 'approve', reason: 'sure' });
  assert.equal(outsider.statusCode, 403);
  assert.match(outsider.json().detail, /GW_ERR_APPROVAL_NOT_APPROVER/);
  assert.equal((await published()).filter((d) => d?.approval_id === id).length, 0);
  // …but each refusal is evidence: approval.refused in the API's own chain, with the decider and the code.
  await audit.close(); // drain the sink (it stays usable)
  const refusals = (await frames()).map((r) => decode(r.value)).filter((e): e is ApprovalRefused & ChainedEvent => e.type === 'approval.refused' && e.approval_id === id);
  assert.deepEqual(refusals.map((r) => [r.sub, r.code, r.requester, r.decision]), [
    ['alice', 'GW_ERR_APPROVAL_SELF', 'alice', 'approve'],
    ['dev-1', 'GW_ERR_APPROVAL_NOT_APPROVER', 'alice', 'approve'],
  ]);
  assert.ok(refusals.every((r) => r.session_id.startsWith('api:api-test:') && r.request_session_id !== r.session_id));
});

test('an approval is published as approval.decided with the token\'s identity; a second vote by the same approver conflicts', async () => {
  const id = await request({ min_approvers: 2 });
  const res = await decide(id, 'bob', { decision: 'approve', reason: 'ticket CHG-1', via: 'cli' });
  assert.equal(res.statusCode, 202);
  assert.equal(res.json().type, 'approval.decided');
  await waitFor(async () => (await app.inject({ url: `/api/approvals/${id}`, headers: auth('bob') })).json().approvals === 1);
  const dup = await decide(id, 'bob', { decision: 'approve', reason: 'again' });
  assert.equal(dup.statusCode, 409);
  assert.match(dup.json().detail, /GW_ERR_APPROVAL_DUPLICATE/);
  const d = (await published()).find((x) => x?.approval_id === id)!;
  assert.equal(d.type, 'approval.decided');
  assert.equal(d.sub, 'bob');
  assert.deepEqual(d.groups, ['dba']);
  assert.equal(d.type === 'approval.decided' && d.decision, 'approve');
  assert.equal(d.reason, 'ticket CHG-1');
  assert.equal(d.via, 'cli');
});

test('force override is for admins; break_glass is an approver\'s; both are approval.override', async () => {
  const id = await request({ min_approvers: 3 });
  assert.equal((await decide(id, 'bob', { decision: 'approve', reason: 'urgent fix', override: 'force' })).statusCode, 403);
  assert.equal((await decide(id, 'admin', { decision: 'deny', reason: 'nope', override: 'force' })).statusCode, 400);
  const forced = await decide(id, 'admin', { decision: 'approve', reason: 'incident 7', override: 'force' });
  assert.equal(forced.statusCode, 202);
  assert.equal(forced.json().type, 'approval.override');
  const id2 = await request();
  const glass = await decide(id2, 'alice', { decision: 'approve', reason: 'prod down, paging', override: 'break_glass' });
  assert.equal(glass.statusCode, 202, 'break-glass lets the requester approve, flagged');
  const all = await published();
  assert.equal(all.find((x) => x?.approval_id === id)?.type, 'approval.override');
  const g = all.find((x) => x?.approval_id === id2)!;
  assert.equal(g.type === 'approval.override' && g.kind, 'break_glass');
});

test('a resolved or expired request cannot be decided; unknown ids are 404; bad bodies are 400', async () => {
  const id = await request({ expires_in_s: 0 });
  await new Promise((r) => setTimeout(r, 10));
  const late = await decide(id, 'bob', { decision: 'approve', reason: 'too late' });
  assert.equal(late.statusCode, 409);
  assert.match(late.json().detail, /GW_ERR_APPROVAL_EXPIRED/);
  assert.equal((await app.inject({ url: `/api/approvals/${id}`, headers: auth('bob') })).json().state, 'expired');
  assert.equal((await decide(randomUUID(), 'bob', { decision: 'approve', reason: 'who?' })).statusCode, 404);
  const id2 = await request();
  assert.equal((await decide(id2, 'bob', { decision: 'maybe', reason: 'hmm' })).statusCode, 400);
  assert.equal((await decide(id2, 'bob', { decision: 'approve' })).statusCode, 400, 'a reason is required');
  assert.equal((await decide(id2, 'bob', { decision: 'approve', reason: 'ok', sub: 'carol' })).statusCode, 400, 'the decider cannot be chosen in the body');
});
