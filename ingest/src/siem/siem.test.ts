/**
 * OCSF mapping validates for every event type, and each SIEM sink delivers end to end to a real
 * receiver on loopback (HTTPS webhook with HMAC, syslog CEF over TLS with octet counting, Splunk
 * HEC) that fails for a while: nothing is lost, duplicates carry the same event id, and the sink's
 * cursor (its consumer group's offset) only covers what was acknowledged.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttps } from 'node:https';
import { createServer as createTls } from 'node:tls';
import { createHmac } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topics } from '@vigil/eventlog/types';
import { schemas } from '@vigil/schemas';
import { MemoryEventLog } from '../testing/memory-log.ts';
import { silentLogger } from '../errors.ts';
import { MAPPED_TYPES, toOcsf, type OcsfRecord } from './ocsf/map.ts';
import { validateOcsf, OCSF_VERSION } from './ocsf/validate.ts';
import { createSink, runSink } from './sinks/deliver.ts';
import { toCef } from './sinks/cef.ts';
import type { SinkConfig } from './config.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-siem-'));
let cert: Buffer;
let key: Buffer;
before(() => {
  // A throwaway self-signed certificate for 127.0.0.1, made for this test run only.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  cert = readFileSync(join(dir, 'cert.pem'));
  key = readFileSync(join(dir, 'key.pem'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const SESSION = { sub: 'alice', groups: ['dba'], actor_kind: 'human', client_addr: '10.0.0.7:5000', client_app: 'psql', target_id: 'prod-pg', started_at: 1 };
const env = { event_id: 'e1', time: 1_768_212_000_000_000, session_id: 's1', seq: 3, prev_hash: '0'.repeat(64), hash: '1'.repeat(64), gateway_id: 'gw', gateway_version: '0.1.0', sub: 'alice', client_addr: '10.0.0.7:5000', target_id: 'prod-pg', target_addr: '10.1.0.5:5432' };
/** One sample of every exported event type. */
const SAMPLES: Record<string, Record<string, unknown>> = {
  frame: { ...env, type: 'frame', version: 1, direction: 'c2s', msg_type: 'Q', data: new Uint8Array(12) },
  'session.started': { ...env, type: 'session.started', version: 1, tls: true, upstream_tls: true },
  'session.ended': { ...env, type: 'session.ended', version: 1, reason: 'client_closed', duration_us: 5e6, bytes_c2s: 1, bytes_s2c: 2, messages_c2s: 1, messages_s2c: 1 },
  'auth.failed': { ...env, sub: undefined, type: 'auth.failed', version: 1, code: 'GW_ERR_TOKEN_EXPIRED', reason: 'expired', claimed_user: 'alice' },
  'protocol.refused': { ...env, type: 'protocol.refused', version: 1, code: 'GW_ERR_FRAME_TOO_LARGE', reason: 'too large' },
  query: { ...env, type: 'query', time: '2026-01-12 10:00:00.000000', end_seq: 5, duration_us: 10, protocol_kind: 'simple', statement: 'select * from orders', statement_name: '', params: ['secret-param'], command_tag: 'SELECT 3', rows: 3, bytes: 40, sqlstate: '', error: '', statement_known: 1 },
  'policy.blocked': { ...env, type: 'policy.blocked', version: 1, rule_id: 'r', action: 'block', reason: 'rule', code: 'GW_ERR_POLICY_BLOCKED', sqlstate: '42501', message: 'no', protocol_kind: 'simple', statement: 'drop table x', features: [], relations: [] },
  'policy.limit': { ...env, type: 'policy.limit', version: 1, rule_id: 'r', limit: 'max_rows', value: 10, observed: 11 },
  'policy.loaded': { ...env, type: 'policy.loaded', version: 1, file: 'p.yaml', digest: 'a'.repeat(64), rules: 3, reason: 'start' },
  'policy.rejected': { ...env, type: 'policy.rejected', version: 1, file: 'p.yaml', code: 'GW_ERR_POLICY_SYNTAX', problems: [], in_force_digest: 'a'.repeat(64) },
  'approval.requested': { ...env, type: 'approval.requested', version: 1, approval_id: 'ap1', rule_id: 'r', approver_groups: ['leads'], min_approvers: 1, allow_self_approval: false, expires_at: 1, protocol_kind: 'simple', statement: 'delete from t', features: [], relations: [] },
  'approval.resolved': { ...env, type: 'approval.resolved', version: 1, approval_id: 'ap1', outcome: 'approved', decisions: [], waited_us: 1 },
  'approval.decided': { type: 'approval.decided', version: 1, event_id: 'd1', time: env.time, approval_id: 'ap1', session_id: 's1', sub: 'bob', groups: ['leads'], reason: 'ok', via: 'api', decision: 'approve' },
  'approval.override': { type: 'approval.override', version: 1, event_id: 'o1', time: env.time, approval_id: 'ap1', session_id: 's1', sub: 'bob', groups: ['leads'], reason: 'INC-1', via: 'cli', kind: 'break_glass' },
  'approval.refused': { ...env, type: 'approval.refused', version: 1, approval_id: 'ap1', request_session_id: 's0', requester: 'alice', decision: 'approve', code: 'GW_ERR_APPROVAL_SELF', message: 'self-approval is not allowed' },
  'mask.applied': { ...env, type: 'mask.applied', version: 1, protocol_kind: 'simple', statement_kind: 'SelectStmt', rows: 3, rule_ids: ['m'], columns: [], detectors: [] },
  'recording.viewed': { ...env, type: 'recording.viewed', version: 1, viewed_session_id: 's0', view: 'replay', route: 'GET /api/sessions/:id', roles: ['analyst'] },
  'ssh.channel': { ...env, type: 'ssh.channel', version: 1, channel: 0, action: 'refused', kind: 'direct-tcpip', code: 'GW_ERR_SSH_FORWARDING_REFUSED', reason: 'no' },
  'ssh.request': { ...env, type: 'ssh.request', version: 1, channel: 0, direction: 'c2s', request: 'exec', accepted: true, command: 'uptime' },
  'ssh.file': { ...env, type: 'ssh.file', version: 1, channel: 0, protocol: 'sftp', op: 'write', path: '/tmp/x', direction: 'upload', bytes: 10 },
  alert: { type: 'alert', version: 1, event_id: 'al1', alert_id: 'al1', time: env.time, rule: 'bulk_read.per_query', severity: 'high', sub: 'alice', groups: ['dba'], session_id: 's1', target_id: 'prod-pg', summary: 'big', evidence: ['e1'], facts: { rows: 1 }, dedupe_key: 's1' },
};
const ctx = { session: (id: string) => (id === 's1' ? SESSION : undefined), product_version: '0.1.0' };

test(`OCSF ${OCSF_VERSION}: every event type has a mapping, and each record validates against the shipped schema`, () => {
  const types = Object.keys(schemas).map((k) => k.split('@')[0]!);
  for (const t of types) assert.ok(MAPPED_TYPES.includes(t), `no OCSF mapping for ${t}`);
  for (const t of types) {
    const r = toOcsf(SAMPLES[t] as never, ctx);
    assert.ok(r, t);
    assert.deepEqual(validateOcsf(r), [], `${t} → ${String(r.class_uid)}`);
    assert.equal((r.metadata as { uid: string }).uid, SAMPLES[t]!.event_id);
  }
  const q = toOcsf(SAMPLES.query as never, ctx)!;
  assert.equal(q.class_uid, 6005);
  assert.equal(q.activity_id, 4);
  assert.equal(JSON.stringify(q).includes('secret-param'), false, 'statement parameters are never exported');
  assert.equal(toOcsf(SAMPLES['session.started'] as never, ctx)!.class_uid, 3002);
  assert.equal(toOcsf(SAMPLES.alert as never, ctx)!.class_uid, 2004);
});

test('the validator rejects records that break the schema', () => {
  const good = toOcsf(SAMPLES.query as never, ctx)!;
  assert.match(validateOcsf({ ...good, type_uid: 1 }).join(), /type_uid/);
  assert.match(validateOcsf({ ...good, activity_id: 42, type_uid: 600542 }).join(), /activity_id/);
  assert.match(validateOcsf({ ...good, actor: undefined }).join(), /actor: required/);
  assert.match(validateOcsf({ ...good, database: undefined, query_info: undefined }).join(), /at least one of database/);
  assert.match(validateOcsf({ ...good, class_uid: 9999 }).join(), /not a class/);
  const { finding_info: _f, ...noFinding } = toOcsf(SAMPLES.alert as never, ctx)!;
  assert.match(validateOcsf(noFinding).join(), /finding_info: required/);
});

test('CEF escapes header and extension values', () => {
  const r = toOcsf({ ...SAMPLES.query, statement: 'select 1 = 1 | x\\y\nz' } as never, ctx)!;
  const cef = toCef(r, '0.1.0');
  assert.match(cef, /^CEF:0\|Vigil\|Vigil\|0\.1\.0\|600504\|Datastore Activity\|1\|/);
  assert.match(cef, /msg=select 1 \\= 1 \| x\\\\y\\nz/);
});

/** Records on the OCSF topic: 40 queries, each with a unique event id. */
async function fill(log: MemoryEventLog, n = 40): Promise<string[]> {
  await log.ensureTopics([Topics.ocsf]);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = toOcsf({ ...SAMPLES.query, event_id: `q-${i}`, seq: i } as never, ctx)!;
    ids.push(`q-${i}`);
    log.append(Topics.ocsf, [{ key: 's1', value: Buffer.from(JSON.stringify(r)) }]);
  }
  return ids;
}

async function deliverAll(config: SinkConfig, receivedIds: () => string[], expected: string[], log: MemoryEventLog) {
  const runner = await runSink(log, config, createSink(config, '0.1.0'), silentLogger);
  const t0 = Date.now();
  while (!expected.every((id) => receivedIds().includes(id))) {
    if (Date.now() - t0 > 30_000) throw new Error(`not delivered: ${expected.filter((id) => !receivedIds().includes(id)).length}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  while (log.committedOffset(`vigil-siem-${config.name}`, Topics.ocsf) < expected.length) await new Promise((r) => setTimeout(r, 10));
  await runner.stop();
  return runner.stats;
}

const delivery = { max_batch_events: 8, retry_backoff_ms: 5, retry_max_ms: 200, timeout_ms: 2000 };

test('webhook: HMAC-signed batches over HTTPS; a receiver down for its first requests loses nothing', async () => {
  process.env.VIGIL_TEST_WEBHOOK_SECRET = 'whsec-test-123';
  const got: string[] = [];
  let calls = 0;
  let badSignatures = 0;
  const server = createHttps({ cert, key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls++;
      const body = Buffer.concat(chunks).toString();
      const expect = `sha256=${createHmac('sha256', 'whsec-test-123').update(`${String(req.headers['x-vigil-timestamp'])}.${body}`).digest('hex')}`;
      if (req.headers['x-vigil-signature'] !== expect) badSignatures++;
      if (calls <= 3) return void res.writeHead(503).end(); // failing for a while
      if (calls === 4) {
        // Took the batch but the answer is lost: the sink must resend it (a bounded duplicate).
        for (const r of JSON.parse(body) as OcsfRecord[]) got.push((r.metadata as { uid: string }).uid);
        return void res.destroy();
      }
      for (const r of JSON.parse(body) as OcsfRecord[]) got.push((r.metadata as { uid: string }).uid);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const log = new MemoryEventLog({ retry_delay_ms: 5 });
  const ids = await fill(log);
  const stats = await deliverAll({ kind: 'webhook', name: 'wh', url: `https://127.0.0.1:${port}/ingest`, hmac_secret: { env: 'VIGIL_TEST_WEBHOOK_SECRET' }, ca_file: join(dir, 'cert.pem'), ...delivery }, () => got, ids, log);
  server.close();
  assert.equal(badSignatures, 0);
  assert.deepEqual([...new Set(got)].sort(), [...ids].sort(), 'every record delivered');
  assert.ok(got.length - ids.length <= delivery.max_batch_events, 'duplicates bounded by one batch');
  assert.ok(stats.failures >= 4);
});

test('syslog: CEF over TLS with octet-counted framing; a receiver that drops connections loses nothing', async () => {
  const got: string[] = [];
  let conns = 0;
  const server = createTls({ cert, key }, (sock) => {
    conns++;
    if (conns <= 2) return void sock.destroy(); // refuses the first connections
    let buf = Buffer.alloc(0);
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const sp = buf.indexOf(0x20);
        if (sp < 0) break;
        const len = Number(buf.subarray(0, sp).toString());
        assert.ok(Number.isInteger(len) && len > 0, 'octet count');
        if (buf.length < sp + 1 + len) break;
        const msg = buf.subarray(sp + 1, sp + 1 + len).toString();
        buf = buf.subarray(sp + 1 + len);
        assert.match(msg, /^<\d+>1 \S+ \S+ vigil - 6005 - CEF:0\|Vigil\|/);
        got.push(/externalId=(\S+)/.exec(msg)![1]!);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const log = new MemoryEventLog({ retry_delay_ms: 5 });
  const ids = await fill(log);
  await deliverAll({ kind: 'syslog', name: 'sl', host: '127.0.0.1', port, tls: true, app_name: 'vigil', ca_file: join(dir, 'cert.pem'), ...delivery }, () => got, ids, log);
  server.close();
  assert.deepEqual([...new Set(got)].sort(), [...ids].sort());
});

test('Splunk HEC: token auth, code 0 acknowledges; busy answers (503 code 9) are retried; the token never appears in errors', async () => {
  process.env.VIGIL_TEST_HEC_TOKEN = 'hec-token-abc';
  const got: string[] = [];
  let calls = 0;
  let badAuth = 0;
  const server = createHttps({ cert, key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls++;
      if (req.url !== '/services/collector/event' || req.headers.authorization !== 'Splunk hec-token-abc') badAuth++;
      if (calls % 3 === 1) return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"text":"Server is busy","code":9}');
      for (const line of Buffer.concat(chunks).toString().split('\n')) got.push((JSON.parse(line) as { event: { metadata: { uid: string } } }).event.metadata.uid);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const log = new MemoryEventLog({ retry_delay_ms: 5 });
  const ids = await fill(log);
  const errors: string[] = [];
  const cfg: SinkConfig = { kind: 'hec', name: 'hec', url: `https://127.0.0.1:${port}`, token: { env: 'VIGIL_TEST_HEC_TOKEN' }, sourcetype: 'ocsf', ca_file: join(dir, 'cert.pem'), ...delivery };
  const logger = { ...silentLogger, warn: (o: object) => errors.push(JSON.stringify(o)) };
  const runner = await runSink(log, cfg, createSink(cfg, '0.1.0'), logger);
  while (!ids.every((id) => got.includes(id))) await new Promise((r) => setTimeout(r, 10));
  await runner.stop();
  server.close();
  assert.equal(badAuth, 0);
  assert.deepEqual([...new Set(got)].sort(), [...ids].sort());
  assert.ok(errors.length > 0 && errors.every((e) => !e.includes('hec-token-abc')), 'failures logged without the token');
});
