/** GET /api/alerts against real chDB: filters, severity floor, pagination, roles, bad input. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { openDevIssuer, type DevIssuer } from '@vigil/identity/dev-issuer';
import { createVerifier } from '@vigil/identity/verifier';
import { buildApi } from '../app.ts';

const ISSUER = 'http://127.0.0.1:8480';
let dir: string;
let store: ClickHouseClient;
let issuer: DevIssuer;
let app: FastifyInstance;
const tokens: Record<string, string> = {};

const row = (i: number, over: Record<string, unknown> = {}) => ({
  alert_id: `a${String(i).padStart(3, '0')}`, time: `2026-01-12 10:00:${String(i).padStart(2, '0')}.000000`, rule: 'bulk_read.per_query', severity: 'high',
  sub: 'alice', groups: ['analysts'], session_id: `s${i}`, target_id: 'prod-pg', summary: 'big read', evidence: [`e${i}`], facts: JSON.stringify({ rows: i }), dedupe_key: `s${i}`, ...over,
});

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-alerts-api-'));
  store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
  await applyDdl(store);
  issuer = await openDevIssuer({ dir: join(dir, 'issuer'), issuer: ISSUER });
  for (const role of ['analyst', 'auditor', 'admin', 'approver']) tokens[role] = await issuer.mint({ sub: `${role}-user`, roles: [role], ttl_s: 600, audience: 'vigil' });
  const verifier = createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file });
  app = await buildApi({ config: {}, verifier, store });
  await store.insert({
    table: 'alerts', format: 'JSONEachRow',
    values: [
      ...Array.from({ length: 5 }, (_, i) => row(i)),
      row(10, { rule: 'off_hours', severity: 'medium', sub: 'bob', session_id: 'sb' }),
      row(11, { rule: 'overrides.self_approval', severity: 'critical', sub: 'bob', session_id: 'sb2' }),
    ],
  });
});
after(async () => {
  await app?.close();
  await releaseStore(store);
  rmSync(dir, { recursive: true, force: true });
});

const get = (url: string, role = 'analyst') => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${tokens[role]}` } });

test('lists alerts newest first with facts as an object', async () => {
  const r = await get('/api/alerts');
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json();
  assert.equal(body.items.length, 7);
  assert.equal(body.items[0].alert_id, 'a011');
  assert.deepEqual(body.items.at(-1).facts, { rows: 0 });
  assert.equal(body.items[0].time, '2026-01-12T10:00:11.000000Z');
  assert.equal('dedupe_key' in body.items[0], false, 'undeclared columns never leave the API');
});

test('filters: sub, rule prefix, min_severity, session, time range', async () => {
  assert.equal((await get('/api/alerts?sub=bob')).json().items.length, 2);
  assert.deepEqual((await get('/api/alerts?rule=overrides.*')).json().items.map((a: { rule: string }) => a.rule), ['overrides.self_approval']);
  assert.equal((await get('/api/alerts?min_severity=high')).json().items.length, 6);
  assert.equal((await get('/api/alerts?min_severity=critical')).json().items.length, 1);
  assert.equal((await get('/api/alerts?session_id=s3')).json().items[0].alert_id, 'a003');
  assert.equal((await get('/api/alerts?from=2026-01-12T10:00:02Z&to=2026-01-12T10:00:04Z')).json().items.length, 2);
});

test('pagination with a cursor visits every alert once', async () => {
  const seen: string[] = [];
  let url = '/api/alerts?limit=3';
  for (;;) {
    const body = (await get(url)).json();
    seen.push(...body.items.map((a: { alert_id: string }) => a.alert_id));
    if (!body.next) break;
    url = `/api/alerts?limit=3&cursor=${body.next}`;
  }
  assert.equal(seen.length, 7);
  assert.equal(new Set(seen).size, 7);
});

test('roles: auditor and admin read; approver and anonymous are refused; bad filters are 400', async () => {
  assert.equal((await get('/api/alerts', 'auditor')).statusCode, 200);
  assert.equal((await get('/api/alerts', 'admin')).statusCode, 200);
  assert.equal((await get('/api/alerts', 'approver')).statusCode, 403);
  assert.equal((await app.inject({ method: 'GET', url: '/api/alerts' })).statusCode, 401);
  assert.equal((await get('/api/alerts?severity=high')).statusCode, 400, 'unknown parameter');
  assert.equal((await get('/api/alerts?min_severity=urgent')).statusCode, 400);
  assert.equal((await get("/api/alerts?rule=x'or")).statusCode, 400);
  assert.equal((await get('/api/alerts?from=yesterday')).statusCode, 400);
});

test('one alert by alert_id (the UI detail page); sessions filtered by has_alerts; search covers command lines', async () => {
  const one = await get('/api/alerts?alert_id=a010');
  assert.equal(one.statusCode, 200, one.body);
  assert.deepEqual(one.json().items.map((a: { alert_id: string }) => a.alert_id), ['a010']);
  assert.deepEqual((await get('/api/alerts?alert_id=nope')).json().items, []);
  await store.insert({
    table: 'sessions', format: 'JSONEachRow',
    values: ['sb', 'quiet'].map((id) => ({ session_id: id, version: 1, started_at: '2026-01-12 09:00:00.000000', sub: 'bob', target_id: 'web-1', protocol: 'ssh', gateway_id: 'gw' })),
  });
  await store.insert({
    table: 'commands', format: 'JSONEachRow',
    values: [{ session_id: 'quiet', seq: 5, channel: 0, time: '2026-01-12 09:00:01.000000', sub: 'bob', target_id: 'web-1', source: 'shell', line: 'tar czf /tmp/Exfil.tgz /srv', uncertain: false, blocked: false, rule_id: '' }],
  });
  const ids = async (qs: string) => (await get(`/api/sessions?${qs}`)).json().items.map((s: { session_id: string }) => s.session_id).sort();
  assert.deepEqual(await ids('sub=bob&has_alerts=true'), ['sb']);
  assert.deepEqual(await ids('sub=bob&has_alerts=false'), ['quiet']);
  assert.deepEqual(await ids('q=exfil.TGZ'), ['quiet'], 'case-insensitive substring of a shell line');
  assert.deepEqual(await ids('q=exfil&has_alerts=true'), []);
});
