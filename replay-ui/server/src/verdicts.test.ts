/**
 * Query replay verdicts (issue 6: "verdict (allowed, blocked, approved by whom, masked)") derived from
 * the events within each statement's frames, and the stored result preview — against real chDB.
 */
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
import { buildApi } from './app.ts';

const ISSUER = 'http://127.0.0.1:8480';
let dir: string;
let store: ClickHouseClient;
let issuer: DevIssuer;
let app: FastifyInstance;
let token: string;

const t = (ms: number) => new Date(Date.UTC(2026, 10, 20, 10, 0, 0) + ms).toISOString().replace('T', ' ').replace('Z', '000');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-verdicts-'));
  store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
  await applyDdl(store);
  issuer = await openDevIssuer({ dir: join(dir, 'issuer'), issuer: ISSUER });
  token = await issuer.mint({ sub: 'ann', roles: ['analyst'], ttl_s: 600, audience: 'vigil' });
  await store.insert({ table: 'sessions', format: 'JSONEachRow', values: [{ session_id: 'v1', version: 1, started_at: t(0), sub: 'alice', target_id: 'main', protocol: 'postgres', gateway_id: 'gw' }] });
  const q = (seq: number, statement: string, extra: Record<string, unknown> = {}) => ({
    session_id: 'v1', seq, end_seq: seq + 2, event_id: `q${seq}`, time: t(seq), duration_us: 10, sub: 'alice', target_id: 'main', protocol_kind: 'simple',
    statement, statement_name: '', params: [], command_tag: '', rows: 0, bytes: 0, sqlstate: '', error: '', statement_known: 1, ...extra,
  });
  await store.insert({
    table: 'queries',
    format: 'JSONEachRow',
    values: [
      q(1, 'SELECT 1'),
      q(4, 'DROP TABLE t'),
      q(7, 'TRUNCATE a'),
      q(10, 'TRUNCATE b'),
      q(13, 'SELECT ssn, name FROM customers', { rows: 2, preview_columns: ['ssn', 'name'], preview_rows: [['[REDACTED]', 'alice'], ['[REDACTED]', null]] }),
    ],
  });
  const ev = (seq: number, type: string, detail: Record<string, unknown>) => ({ session_id: 'v1', seq, event_id: `e${seq}`, type, time: t(seq), detail: JSON.stringify(detail) });
  await store.insert({
    table: 'events',
    format: 'JSONEachRow',
    values: [
      ev(5, 'policy.blocked', { rule_id: 'no-drop', message: 'DROP is not allowed' }),
      ev(8, 'approval.resolved', { outcome: 'approved', decisions: [{ sub: 'bob', decision: 'approve', reason: 'CHG-1' }] }),
      ev(11, 'approval.resolved', { outcome: 'denied', decisions: [{ sub: 'carol', decision: 'deny', reason: 'freeze' }] }),
      ev(14, 'mask.applied', { rule_ids: ['no-ssn'], columns: [{ name: 'ssn' }], detectors: [], rows: 2 }),
    ],
  });
  app = await buildApi({ config: {}, verifier: createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file }), store });
  await app.ready();
});

after(async () => {
  await app?.close();
  if (store) await releaseStore(store);
  rmSync(dir, { recursive: true, force: true });
});

test('verdicts: allowed, blocked, approved by whom, denied, masked; preview as stored', async () => {
  const res = await app.inject({ url: '/api/sessions/v1', headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200);
  const qs = res.json().queries as { statement: string; verdict: string; verdict_rule: string | null; verdict_message: string; masked: boolean; preview: { columns: string[]; rows: (string | null)[][] } }[];
  const by = (s: string) => qs.find((x) => x.statement === s)!;
  assert.equal(by('SELECT 1').verdict, 'allowed');
  assert.deepEqual(by('SELECT 1').preview, { columns: [], rows: [] });
  assert.deepEqual([by('DROP TABLE t').verdict, by('DROP TABLE t').verdict_rule, by('DROP TABLE t').verdict_message], ['blocked', 'no-drop', 'DROP is not allowed']);
  assert.equal(by('TRUNCATE a').verdict, 'approved');
  assert.match(by('TRUNCATE a').verdict_message, /approved by bob: CHG-1/);
  assert.equal(by('TRUNCATE b').verdict, 'denied');
  assert.match(by('TRUNCATE b').verdict_message, /denied — carol: freeze/);
  const m = by('SELECT ssn, name FROM customers');
  assert.deepEqual([m.verdict, m.verdict_rule, m.masked], ['masked', 'no-ssn', true]);
  assert.match(m.verdict_message, /masked: ssn/);
  assert.deepEqual(m.preview, { columns: ['ssn', 'name'], rows: [['[REDACTED]', 'alice'], ['[REDACTED]', null]] });
});
