/**
 * Access audit: serving a recording writes `recording.viewed` (viewer, roles, session, route) into the
 * API's own hash chain on a real local event log; a missing session writes nothing; when the log has
 * failed for good the recording is not served (503).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { openDevIssuer, type DevIssuer } from '@vigil/identity/dev-issuer';
import { createVerifier } from '@vigil/identity/verifier';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { Topics, type ConsumedRecord, type EventLog } from '@vigil/eventlog';
import { decode, verifyChain, type RecordingViewed } from '@vigil/schemas';
import { MemoryProducer } from '@vigil/gateway/protocols/pg/testkit';
import { buildApi } from './app.ts';
import { createAccessAudit } from './access-audit.ts';

const ISSUER = 'http://127.0.0.1:8480';
let dir: string;
let store: ClickHouseClient;
let issuer: DevIssuer;
let log: EventLog;
let token: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-audit-'));
  store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
  await applyDdl(store);
  await store.insert({
    table: 'sessions',
    format: 'JSONEachRow',
    values: [{ session_id: 'sess-1', version: 1, started_at: '2026-11-20 10:00:00.000000', sub: 'alice', target_id: 'main', protocol: 'postgres', gateway_id: 'gw' }],
  });
  issuer = await openDevIssuer({ dir: join(dir, 'issuer'), issuer: ISSUER });
  token = await issuer.mint({ sub: 'ann', roles: ['analyst'], groups: ['sec'], ttl_s: 600, audience: 'vigil' });
  log = await LocalEventLog.open({ dir: join(dir, 'log'), fsync: 'never' });
});

after(async () => {
  await log?.close();
  if (store) await releaseStore(store);
  rmSync(dir, { recursive: true, force: true });
});

async function frames(): Promise<ConsumedRecord[]> {
  const out: ConsumedRecord[] = [];
  const c = log.consumer({ groupId: `probe-${randomUUID()}`, topics: [Topics.frames], fromBeginning: true });
  await c.run(async (b) => void out.push(...b.records));
  await new Promise((r) => setTimeout(r, 200));
  await c.stop();
  return out;
}

const verifier = () => createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file });

test('a served recording is a recording.viewed event in the API chain; a missing one is not', async () => {
  await log.ensureTopics([Topics.frames]);
  const producer = log.producer();
  const audit = createAccessAudit(producer, { api_id: 'api-test', version: '0.1.0' });
  const app = await buildApi({ config: {}, verifier: verifier(), store, audit });
  const auth = { authorization: `Bearer ${token}` };
  assert.equal((await app.inject({ url: '/api/sessions/sess-1', headers: auth })).statusCode, 200);
  assert.equal((await app.inject({ url: '/api/sessions/no-such', headers: auth })).statusCode, 404);
  assert.equal((await app.inject({ url: '/api/sessions', headers: auth })).statusCode, 200, 'listing is not viewing');
  await audit.close();
  await producer.close();
  await app.close();
  const recs = await frames();
  const views = recs.map((r) => decode(r.value)).filter((e): e is RecordingViewed => e.type === 'recording.viewed');
  assert.equal(views.length, 1);
  const v = views[0]!;
  assert.equal(v.sub, 'ann');
  assert.deepEqual(v.roles, ['analyst']);
  assert.deepEqual(v.groups, ['sec']);
  assert.equal(v.viewed_session_id, 'sess-1');
  assert.equal(v.view, 'replay');
  assert.equal(v.route, 'GET /api/sessions/:id');
  assert.match(v.session_id, /^api:api-test:/);
  assert.ok(verifyChain(recs.filter((r) => r.key === v.session_id).map((r) => r.value)).ok);
  assert.ok(!JSON.stringify(v).includes(token.split('.')[2]!), 'never the token');
});

test('the log failed for good: recordings are refused with 503, not served unaudited', async () => {
  const producer = new MemoryProducer();
  producer.failWith = Object.assign(new Error('disk gone'), { retriable: false });
  const audit = createAccessAudit(producer, { api_id: 'api-test', version: '0.1.0' });
  const app = await buildApi({ config: {}, verifier: verifier(), store, audit });
  const auth = { authorization: `Bearer ${token}` };
  // The first view is accepted into the sink; its send fails and latches the failure.
  await app.inject({ url: '/api/sessions/sess-1', headers: auth });
  await audit.close().catch(() => {});
  const res = await app.inject({ url: '/api/sessions/sess-1', headers: auth });
  assert.equal(res.statusCode, 503);
  assert.equal(res.json().code, 'API_ERR_AUDIT_UNAVAILABLE');
  await app.close();
});
