/**
 * The API against a real chDB store (one data path for this file: chDB binds one path per process)
 * and a real verifier trusting a dev issuer in a temp dir.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import { Registry, collectDefaultMetrics } from 'prom-client';
import pino from 'pino';
import { Writable } from 'node:stream';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { openDevIssuer, type DevIssuer } from '@vigil/identity/dev-issuer';
import { createVerifier } from '@vigil/identity/verifier';
import { buildApi } from './app.ts';
import { PUBLIC_ROUTES, ROLES } from './plugins/auth.ts';
import { SessionSchema, QuerySchema } from './schemas.ts';
import { openLocalAdmin } from './login/local-admin.ts';
import { writeFileSync, mkdirSync } from 'node:fs';

const ISSUER = 'http://127.0.0.1:8480';
let dir: string;
let store: ClickHouseClient;
let issuer: DevIssuer;
let app: FastifyInstance;
const tokens: Record<string, string> = {};

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0) * 1000; // µs
const ch = (us: number) => new Date(Math.floor(us / 1000)).toISOString().replace('T', ' ').replace('Z', '') + String(us % 1000).padStart(3, '0');

function sessionRow(id: string, startedUs: number, over: Record<string, unknown> = {}) {
  return {
    session_id: id, version: 1, started_at: ch(startedUs), ended_at: null, sub: 'alice', groups: ['dba'], issuer: ISSUER,
    actor_kind: 'human', client_addr: '127.0.0.1:5000', client_app: 'psql', target_id: 'pg-main', protocol: 'postgres',
    target_addr: '127.0.0.1:5432', db_name: 'app', db_user: 'postgres', gateway_id: 'gw-1', tls: false, upstream_tls: false,
    end_reason: '', end_detail: '', duration_us: 0, bytes_c2s: 10, bytes_s2c: 20, messages_c2s: 1, messages_s2c: 2, last_hash: 'h',
    ...over,
  };
}

function queryRow(sessionId: string, seq: number, statement: string) {
  return {
    session_id: sessionId, seq, end_seq: seq + 1, event_id: `e-${seq}`, time: ch(T0 + seq * 1000), duration_us: 42, sub: 'alice',
    target_id: 'pg-main', protocol_kind: 'simple', statement, statement_name: '', params: ['1', null], command_tag: 'SELECT 1',
    rows: 1, bytes: 33, sqlstate: '', error: '',
  };
}

const auth = (role: keyof typeof tokens) => ({ authorization: `Bearer ${tokens[role]}` });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-api-'));
  store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
  await applyDdl(store);
  issuer = await openDevIssuer({ dir: join(dir, 'issuer'), issuer: ISSUER });
  for (const role of ['analyst', 'auditor', 'admin', 'approver']) {
    tokens[role] = await issuer.mint({ sub: `${role}-user`, roles: [role], ttl_s: 600, audience: 'vigil' });
  }
  tokens.none = await issuer.mint({ sub: 'nobody', roles: [], ttl_s: 600, audience: 'vigil' });
  tokens.otherAud = await issuer.mint({ sub: 'x', roles: ['admin'], ttl_s: 600, audience: 'elsewhere' });

  await store.insert({
    table: 'sessions',
    format: 'JSONEachRow',
    values: [
      sessionRow('s1', T0 + 1_000_000),
      sessionRow('s2', T0 + 2_000_000, { sub: 'bob', target_id: 'pg-replica' }),
      sessionRow('s3', T0 + 3_000_000, { protocol: 'mysql', target_id: 'my-main', sub: 'bob' }),
      sessionRow('s4', T0 + 4_000_000, { actor_kind: 'agent', sub: 'agent-7' }),
      // Same start as s4: the cursor must break the tie by session_id.
      sessionRow('s5', T0 + 4_000_000),
      sessionRow('s6', T0 + 6_000_123),
    ],
  });
  // A later version of s1 (the session ended): FINAL must return only this one.
  await store.insert({
    table: 'sessions',
    format: 'JSONEachRow',
    values: [sessionRow('s1', T0 + 1_000_000, { version: 9, ended_at: ch(T0 + 9_000_000), end_reason: 'client_closed', duration_us: 8_000_000 })],
  });
  await store.insert({
    table: 'queries',
    format: 'JSONEachRow',
    values: [queryRow('s1', 7, 'select 7'), queryRow('s1', 3, 'select 3'), queryRow('s1', 5, 'select 5'), queryRow('s2', 4, 'select other'), queryRow('s4', 2, 'DROP TABLE Invoices')],
  });
  // The gateway's policy.blocked event follows the c2s frame of the statement it blocked (s1 seq 5 → 6).
  const eventRow = (sessionId: string, seq: number, type: string, detail: object) => ({
    session_id: sessionId, seq, event_id: `ev-${sessionId}-${seq}`, type, time: ch(T0 + seq * 1000), sub: 'alice', target_id: 'pg-main',
    direction: '', msg_type: '', size: 0, prev_hash: '', hash: '', detail: JSON.stringify(detail),
  });
  await store.insert({
    table: 'events',
    format: 'JSONEachRow',
    values: [
      eventRow('s1', 6, 'policy.blocked', { rule_id: 'no-select-5', action: 'block', message: 'blocked by policy rule "no-select-5"', statement: 'select 5' }),
      eventRow('s1', 8, 'frame', {}),
    ],
  });

  const verifier = createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry }); // as the CLI does: the plugin must not register them twice
  // The UI and the local sign-in too, so that the route inventory below covers every public route.
  const uiDir = join(dir, 'ui');
  mkdirSync(uiDir);
  writeFileSync(join(uiDir, 'index.html'), '<!doctype html><title>t</title>');
  const localAdmin = await openLocalAdmin({ dir: join(dir, 'issuer') });
  app = await buildApi({ config: { page_size_default: 3, page_size_max: 4 }, verifier, store, devIssuer: issuer, registry, uiDir, localAdmin });
  // A probe route (declared like any other) to prove serialisation drops undeclared fields.
  app.get('/api/probe', { config: { roles: ['admin'] }, schema: { response: { 200: SessionSchema } } }, async () => ({
    ...(await app.inject({ url: '/api/sessions/s2', headers: auth('admin') })).json().session,
    secret_column: 'must not leak',
  }));
  await app.ready();
});

after(async () => {
  await app?.close();
  if (store) await releaseStore(store);
  rmSync(dir, { recursive: true, force: true });
});

function assertProblem(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string) {
  assert.equal(res.statusCode, status);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.deepEqual(Object.keys(body).sort(), ['code', 'detail', 'status', 'title', 'type']);
  assert.equal(body.code, code);
  assert.equal(body.status, status);
  assert.equal(body.type, `urn:vigil:problem:${code}`);
  return body;
}

const schemaKeys = (s: { properties: Record<string, unknown> }) => Object.keys(s.properties).sort();

describe('authentication and authorisation', () => {
  test('no token → 401 with WWW-Authenticate', async () => {
    const res = await app.inject({ url: '/api/sessions' });
    assertProblem(res, 401, 'API_ERR_UNAUTHENTICATED');
    assert.match(String(res.headers['www-authenticate']), /^Bearer/);
  });

  test('non-Bearer scheme → 401', async () => {
    assertProblem(await app.inject({ url: '/api/sessions', headers: { authorization: 'Basic YWxpY2U6eA==' } }), 401, 'API_ERR_UNAUTHENTICATED');
  });

  test('garbage token → 401 invalid token, detail names the ID_ERR code', async () => {
    const body = assertProblem(await app.inject({ url: '/api/sessions', headers: { authorization: 'Bearer abc.def.ghi' } }), 401, 'API_ERR_INVALID_TOKEN');
    assert.match(body.detail, /^ID_ERR_MALFORMED/);
  });

  test('wrong audience → 401 ID_ERR_WRONG_AUDIENCE, and the token is not echoed', async () => {
    const res = await app.inject({ url: '/api/sessions', headers: auth('otherAud') });
    const body = assertProblem(res, 401, 'API_ERR_INVALID_TOKEN');
    assert.match(body.detail, /ID_ERR_WRONG_AUDIENCE/);
    assert.ok(!res.body.includes(tokens.otherAud.split('.')[1]));
  });

  test('valid token, wrong role → 403', async () => {
    assertProblem(await app.inject({ url: '/api/sessions', headers: auth('approver') }), 403, 'API_ERR_FORBIDDEN');
    assertProblem(await app.inject({ url: '/api/sessions/s1', headers: auth('none') }), 403, 'API_ERR_FORBIDDEN');
  });

  test('unknown route: 401 without a token, 404 problem with one', async () => {
    assertProblem(await app.inject({ url: '/api/nope' }), 401, 'API_ERR_UNAUTHENTICATED');
    assertProblem(await app.inject({ url: '/api/nope', headers: auth('analyst') }), 404, 'API_ERR_NOT_FOUND');
  });
});

describe('GET /api/sessions', () => {
  const list = async (qs: string, role = 'analyst') => {
    const res = await app.inject({ url: `/api/sessions${qs}`, headers: auth(role) });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { items: any[]; next_cursor: string | null };
  };
  const ids = (body: { items: { session_id: string }[] }) => body.items.map((s) => s.session_id);

  test('newest first, default page size, exactly the declared fields, latest row version', async () => {
    const body = await list('');
    assert.deepEqual(ids(body), ['s6', 's5', 's4']);
    assert.deepEqual(Object.keys(body).sort(), ['items', 'next_cursor']);
    for (const s of body.items) assert.deepEqual(Object.keys(s).sort(), schemaKeys(SessionSchema));
    assert.equal(body.items[0].started_at, '2026-01-10T12:00:06.000123Z');
    const s1 = (await list('?sub=alice&limit=4')).items.find((s) => s.session_id === 's1');
    assert.equal(s1.end_reason, 'client_closed');
    assert.equal(s1.ended_at, '2026-01-10T12:00:09.000000Z');
    assert.equal(s1.duration_us, 8_000_000);
  });

  test('all roles allowed by the route can list', async () => {
    for (const role of ['analyst', 'auditor', 'admin']) assert.equal((await list('?limit=1', role)).items.length, 1);
  });

  test('filters: sub, target_id, protocol, from/to (ISO and µs)', async () => {
    assert.deepEqual(ids(await list('?sub=bob')), ['s3', 's2']);
    assert.deepEqual(ids(await list('?target_id=pg-replica')), ['s2']);
    assert.deepEqual(ids(await list('?protocol=mysql')), ['s3']);
    assert.deepEqual(ids(await list('?sub=bob&protocol=postgres')), ['s2']);
    assert.deepEqual(ids(await list(`?from=${T0 + 2_000_000}&to=${T0 + 4_000_000}`)), ['s3', 's2']);
    assert.deepEqual(ids(await list('?from=2026-01-10T12:00:03Z&to=2026-01-10T12:00:06.000123Z')), ['s5', 's4', 's3']);
    assert.deepEqual(ids(await list('?from=2026-01-10T12:00:06.000123Z')), ['s6']);
    assert.deepEqual(ids(await list('?sub=nobody')), []);
  });

  test('filters: actor_kind, live, statement search (q, case-insensitive substring)', async () => {
    assert.deepEqual(ids(await list('?actor_kind=agent')), ['s4']);
    assert.deepEqual(ids(await list('?actor_kind=human&sub=bob')), ['s3', 's2']);
    assert.deepEqual(ids(await list('?live=false')), ['s1']);
    assert.deepEqual(ids(await list('?live=true&sub=alice&limit=4')), ['s6', 's5']);
    assert.deepEqual(ids(await list('?q=invoices')), ['s4']);
    assert.deepEqual(ids(await list('?q=select')), ['s2', 's1']);
    assert.deepEqual(ids(await list('?q=select%205')), ['s1']);
    assert.deepEqual(ids(await list('?q=select&sub=bob')), ['s2']);
    assert.deepEqual(ids(await list(`?q=${encodeURIComponent("%' OR 1=1 --")}`)), []);
    assertProblem(await app.inject({ url: '/api/sessions?actor_kind=robot', headers: auth('analyst') }), 400, 'API_ERR_BAD_REQUEST');
  });

  test('filter values are bound, not spliced into SQL', async () => {
    assert.deepEqual(ids(await list(`?sub=${encodeURIComponent("alice' OR 1=1 --")}`)), []);
  });

  test('cursor pagination walks every session once, stable when newer sessions arrive', async () => {
    const seen: string[] = [];
    let page = await list('?limit=2');
    seen.push(...ids(page));
    // A session starting later than everything lands on "page 0"; it must not shift later pages.
    await store.insert({ table: 'sessions', format: 'JSONEachRow', values: [sessionRow('s9-new', T0 + 60_000_000)] });
    while (page.next_cursor) {
      page = await list(`?limit=2&cursor=${encodeURIComponent(page.next_cursor)}`);
      seen.push(...ids(page));
    }
    assert.deepEqual(seen, ['s6', 's5', 's4', 's3', 's2', 's1']);
    assert.equal(ids(await list('?limit=1'))[0], 's9-new');
  });

  test('bad cursor, limit above max, unknown or malformed parameters → 400', async () => {
    assertProblem(await app.inject({ url: '/api/sessions?cursor=bm9wZQ', headers: auth('analyst') }), 400, 'API_ERR_BAD_CURSOR');
    assertProblem(await app.inject({ url: '/api/sessions?limit=5', headers: auth('analyst') }), 400, 'API_ERR_BAD_REQUEST');
    assertProblem(await app.inject({ url: '/api/sessions?limit=0', headers: auth('analyst') }), 400, 'API_ERR_BAD_REQUEST');
    assertProblem(await app.inject({ url: '/api/sessions?user=bob', headers: auth('analyst') }), 400, 'API_ERR_BAD_REQUEST');
    assertProblem(await app.inject({ url: '/api/sessions?from=yesterday', headers: auth('analyst') }), 400, 'API_ERR_BAD_REQUEST');
  });
});

describe('GET /api/sessions/:id', () => {
  test('metadata and queries in session order', async () => {
    const res = await app.inject({ url: '/api/sessions/s1', headers: auth('auditor') });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['queries', 'queries_next', 'session']);
    assert.equal(body.session.session_id, 's1');
    assert.deepEqual(body.queries.map((q: any) => q.seq), [3, 5, 7]);
    assert.deepEqual(body.queries.map((q: any) => q.statement), ['select 3', 'select 5', 'select 7']);
    for (const q of body.queries) assert.deepEqual(Object.keys(q).sort(), schemaKeys(QuerySchema));
    assert.deepEqual(body.queries[0].params, ['1', null]);
    // Verdicts: the policy.blocked event at seq 6 lies within select 5's frames (5..6).
    assert.deepEqual(body.queries.map((q: any) => q.verdict), ['allowed', 'blocked', 'allowed']);
    assert.equal(body.queries[1].verdict_rule, 'no-select-5');
    assert.equal(body.queries[1].verdict_message, 'blocked by policy rule "no-select-5"');
    assert.equal(body.queries[0].verdict_rule, null);
    assert.equal(body.queries[0].verdict_message, '');
    assert.equal(body.queries[0].statement_known, true);
    assert.equal(body.queries_next, null);
  });

  test('queries page with queries_after / queries_limit', async () => {
    const first = (await app.inject({ url: '/api/sessions/s1?queries_limit=2', headers: auth('analyst') })).json();
    assert.deepEqual(first.queries.map((q: any) => q.seq), [3, 5]);
    assert.equal(first.queries_next, 5);
    const rest = (await app.inject({ url: `/api/sessions/s1?queries_limit=2&queries_after=${first.queries_next}`, headers: auth('analyst') })).json();
    assert.deepEqual(rest.queries.map((q: any) => q.seq), [7]);
    assert.equal(rest.queries_next, null);
  });

  test('unknown session → 404 problem', async () => {
    assertProblem(await app.inject({ url: '/api/sessions/does-not-exist', headers: auth('analyst') }), 404, 'API_ERR_NOT_FOUND');
  });
});

describe('GET /api/activity', () => {
  test('sessions, blocks and alerts per bucket (empty buckets included), top identities and targets', async () => {
    await store.insert({
      table: 'alerts',
      format: 'JSONEachRow',
      values: [{ alert_id: 'a1', time: ch(T0 + 2_500_000), rule: 'off_hours', severity: 'medium', sub: 'bob', groups: [], session_id: 's2', target_id: 'pg-replica', summary: 'x', evidence: [], facts: '{}', dedupe_key: 'k1' }],
    });
    const res = await app.inject({ url: `/api/activity?from=${T0}&to=${T0 + 10_000_000}&buckets=10`, headers: auth('analyst') });
    assert.equal(res.statusCode, 200, res.body);
    const a = res.json();
    assert.equal(a.bucket_s, 1);
    assert.equal(a.series.length, 10);
    assert.equal(a.series[0].t, '2026-01-10T12:00:00.000000Z');
    assert.deepEqual(a.series.map((b: any) => b.sessions), [0, 1, 1, 1, 2, 0, 1, 0, 0, 0]);
    assert.deepEqual(a.series.map((b: any) => b.blocked), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(a.by_identity[0], { key: 'alice', sessions: 3 });
    assert.deepEqual(a.by_target.map((t: any) => t.key).sort(), ['my-main', 'pg-main', 'pg-replica']);
    assert.deepEqual(a.series.map((b: any) => b.alerts), [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(a.alerts_by_identity, [{ key: 'bob', sessions: 1 }]);
    assert.deepEqual(a.alerts_by_target, [{ key: 'pg-replica', sessions: 1 }]);
    const bob = (await app.inject({ url: `/api/activity?from=${T0}&to=${T0 + 10_000_000}&sub=bob`, headers: auth('auditor') })).json();
    assert.deepEqual(bob.by_identity, [{ key: 'bob', sessions: 2 }]);
  });
  test('bad windows and roles are refused', async () => {
    assertProblem(await app.inject({ url: `/api/activity?from=${T0 + 5}&to=${T0}`, headers: auth('analyst') }), 400, 'API_ERR_BAD_REQUEST');
    assertProblem(await app.inject({ url: '/api/activity?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', headers: auth('analyst') }), 400, 'API_ERR_BAD_REQUEST');
    assertProblem(await app.inject({ url: '/api/activity', headers: auth('approver') }), 403, 'API_ERR_FORBIDDEN');
  });
});

describe('public routes', () => {
  test('health: 200 without a token when the store answers', async () => {
    const res = await app.inject({ url: '/api/health' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
  });

  test('health: 503 when the store does not answer', async () => {
    const dead = { ping: async () => ({ success: false, error: new Error('connection refused') }) } as unknown as ClickHouseClient;
    const verifier = createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file });
    const other = await buildApi({ config: {}, verifier, store: dead });
    try {
      const body = assertProblem(await other.inject({ url: '/api/health' }), 503, 'API_ERR_STORE_UNAVAILABLE');
      assert.ok(!body.detail.includes('refused'), 'store internals stay in the log');
    } finally {
      await other.close();
    }
  });

  test('/metrics: Prometheus text with process metrics and request counters', async () => {
    await app.inject({ url: '/api/health' });
    const res = await app.inject({ url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(res.body, /^# HELP process_cpu_user_seconds_total/m);
    assert.match(res.body, /vigil_api_http_requests_total\{method="GET",route="\/api\/health",status_code="200"\} \d+/);
    assert.match(res.body, /vigil_api_http_requests_total\{method="GET",route="\/api\/sessions",status_code="401"\} \d+/);
    assert.match(res.body, /vigil_api_http_request_duration_seconds_bucket/);
  });

  test('dev issuer discovery and JWKS (public keys only)', async () => {
    const disc = await app.inject({ url: '/.well-known/openid-configuration' });
    assert.equal(disc.statusCode, 200);
    assert.equal(disc.json().jwks_uri, `${ISSUER}/.well-known/jwks.json`);
    const jwks = (await app.inject({ url: '/.well-known/jwks.json' })).json();
    assert.equal(jwks.keys[0].kid, issuer.kid);
    assert.equal(jwks.keys[0].d, undefined);
  });
});

describe('route inventory', () => {
  test('every route is public by the list or declares roles; every non-public one refuses anonymous requests', async () => {
    assert.ok(app.apiRoutes.length >= 8);
    const publicSeen = new Set<string>();
    for (const r of app.apiRoutes) {
      const key = `${r.method === 'HEAD' ? 'GET' : r.method} ${r.url}`;
      if (PUBLIC_ROUTES.has(key)) {
        publicSeen.add(key);
        assert.equal(r.roles, undefined, `${key} is public and must not declare roles`);
        continue;
      }
      assert.ok(Array.isArray(r.roles) && r.roles.length > 0, `${r.method} ${r.url} declares no roles`);
      const url = r.url.replace(/:(\w+)/g, 'x').replace(/\*$/, 'x');
      const res = await app.inject({ method: r.method as 'GET', url });
      assert.equal(res.statusCode, 401, `${r.method} ${r.url} answered ${res.statusCode} without a token`);
      // …and with a valid token whose role the route does not allow: 403, before any handler runs.
      for (const role of ROLES.filter((x) => !r.roles!.includes(x))) {
        const denied = await app.inject({ method: r.method as 'GET', url, headers: auth(role) });
        assert.equal(denied.statusCode, 403, `${r.method} ${r.url} answered ${denied.statusCode} to role ${role}`);
      }
      const none = await app.inject({ method: r.method as 'GET', url, headers: auth('none') });
      assert.equal(none.statusCode, 403, `${r.method} ${r.url} answered ${none.statusCode} to a token with no role`);
    }
    assert.deepEqual([...publicSeen].sort(), [...PUBLIC_ROUTES].sort());
    assert.ok(app.apiRoutes.some((r) => r.method === 'GET' && r.url === '/api/sessions/:id'));
  });

  test('a route without declared roles is refused at registration', async () => {
    const verifier = createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file });
    const fresh = await buildApi({ config: {}, verifier, store });
    try {
      assert.throws(() => fresh.get('/api/oops', async () => ({ leaked: true })), /declares no roles/);
      assert.throws(() => fresh.get('/api/oops2', { config: { roles: [] } }, async () => ({})), /declares no roles/);
      assert.throws(() => fresh.get('/api/oops3', { config: { roles: ['root' as 'admin'] } }, async () => ({})), /unknown role/);
      fresh.register(async (child) => {
        child.post('/api/inside-plugin', async () => ({}));
      });
      await assert.rejects(async () => { await fresh.ready(); }, /declares no roles/);
    } finally {
      await fresh.close().catch(() => {});
    }
  });

  test('response schemas drop undeclared fields', async () => {
    const res = await app.inject({ url: '/api/probe', headers: auth('admin') });
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(!res.body.includes('secret_column'));
    assert.deepEqual(Object.keys(res.json()).sort(), schemaKeys(SessionSchema));
  });
});

test('request logs (pino) never contain tokens', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  const logger = pino({ level: 'debug' }, sink);
  const verifier = createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file });
  const logged = await buildApi({ config: {}, verifier, store, logger });
  try {
    const expired = await issuer.mint({ sub: 'late', roles: ['admin'], ttl_s: 1, audience: 'vigil' });
    const used = [tokens.analyst, tokens.otherAud, tokens.approver];
    for (const t of used) await logged.inject({ url: '/api/sessions?limit=1', headers: { authorization: `Bearer ${t}` } });
    await logged.inject({ url: '/api/sessions', headers: { authorization: `Bearer ${expired}x` } });
    const text = lines.join('');
    assert.ok(text.includes('request completed'), 'the logger was used');
    for (const t of [...used, expired]) for (const part of t.split('.')) assert.ok(!text.includes(part), 'a token segment was logged');
  } finally {
    await logged.close();
  }
});
