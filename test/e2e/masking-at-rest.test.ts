/**
 * Masking at rest, end to end (issue 3 item 6 and the "Masking" acceptance: "checked in what the
 * client receives and in everything stored (log when mask_before_log, ClickHouse always)"). A real
 * `vigil start` (embedded: local log + chDB) with a policy; the masking corpus (mask-corpus.ts) in
 * the simple and extended protocols, plus what only storage can leak: the secret written by the
 * client itself as a literal or a parameter compared with, assigned or inserted into the masked
 * column, COPY FROM STDIN data, an error echoing it, a blocked and an approval-held statement
 * carrying it. Then, vigil stopped, every row of `queries` (statements, parameters, errors,
 * previews) and `events` (details) is searched for any form of the secret; with mask_before_log the
 * log's files too (and without it they are shown to hold it, so the search can fail).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openStore, releaseStore } from '@vigil/ingest/store/client';
import { startVigil, tempDir } from '../support/vigil-process.ts';
import { psql } from '../support/pg-clients.ts';
import { maskCorpus, maskCorpusSetup, leaks, SECRET } from '../../gateway/src/protocols/pg/mask-corpus.ts';

const S = `mrest_${randomBytes(4).toString('hex')}`;
const POLICY = `version: 1
rules:
  - id: vault-needs-approval
    match: { relations: ['${S}.vault'] }
    require_approval: { approver_groups: [dba], timeout_s: 1 }
  - id: no-ssn
    mask: { columns: ['${S}.customers.ssn'], strategy: redact }
  - id: cards
    mask: { detectors: [card], strategy: partial, keep_last: 4 }
`;
const direct = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
let policyFile: string;

before(async () => {
  await direct.connect();
  await direct.query(maskCorpusSetup(S));
  await direct.query(`CREATE TABLE ${S}.vault (id int, note text); INSERT INTO ${S}.vault VALUES (1, 'v')`);
  const dir = tempDir('vigil-maskrest-');
  policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
});
after(async () => {
  await direct.query(`DROP SCHEMA ${S} CASCADE`);
  await direct.end();
});

/** Statements that put the secret in what the client sends. */
const SENT: { sql: string; params?: unknown[]; fails?: RegExp }[] = [
  { sql: `SELECT id FROM customers WHERE ssn = '${SECRET}'` },
  { sql: `SELECT id FROM customers c WHERE c.ssn IN ('${SECRET}', 'x') AND upper(ssn) LIKE upper('${SECRET}')` },
  { sql: `UPDATE customers SET ssn = '${SECRET}' WHERE id = 1` },
  { sql: `INSERT INTO customers (id, ssn) VALUES (50, '${SECRET}')` },
  { sql: 'SELECT id FROM customers WHERE ssn = $1', params: [SECRET] },
  { sql: 'UPDATE customers SET ssn = $1 WHERE id = $2', params: [SECRET, 1] },
  { sql: `SELECT ssn::int FROM customers WHERE ssn = '${SECRET}'`, fails: /invalid input syntax/ },
  { sql: `CREATE TEMP TABLE laundry3 AS SELECT ssn FROM customers WHERE ssn <> '${SECRET}'`, fails: /masked column/ },
  { sql: `SELECT c.id FROM customers c JOIN vault v USING (id) WHERE c.ssn = '${SECRET}'`, fails: /approval/ },
];

async function run(maskBeforeLog: boolean): Promise<void> {
  await direct.query(`DELETE FROM ${S}.customers WHERE id IN (50, 60)`); // inserted by the previous run
  const vigil = await startVigil({ config: { gateway: { policy_file: policyFile, masking: { mask_before_log: maskBeforeLog } }, ingest: { masking: { preview_rows: 3 } } } });
  let code: number | null = null;
  try {
    const password = await vigil.token('agent-7', { groups: ['bots'] });
    const conn = { port: vigil.gatewayPort, user: 'agent-7', database: 'local-pg', password };

    const c = new pg.Client({ host: '127.0.0.1', ...conn });
    c.on('error', () => {}); // the session ends with vigil when an assertion below fails
    await c.connect();
    await c.query(`SET search_path TO ${S}, public`);
    for (const { sql, blocked } of maskCorpus(S)) {
      for (const q of [sql, { text: sql, queryMode: 'extended' as const }]) {
        if (blocked) await assert.rejects(c.query(q), /masked column|masking/);
        else assert.ok(!leaks((await c.query(q)).rows), sql);
      }
    }
    for (const { sql, params, fails } of SENT) {
      const q = c.query(params ? { text: sql, values: params } : sql);
      if (fails) await assert.rejects(q, (e: Error) => fails.test(e.message) && !leaks(e.message));
      else await q;
    }
    // COPY FROM STDIN last: the gateway refuses writes to a governed target until its catalog is loaded.
    await psql(conn, ['-c', `COPY ${S}.customers (id, ssn) FROM STDIN`], `60\t${SECRET}\n\\.\n`);
    await c.query(`SELECT 'done-${S}' AS marker`);
    await c.end();

    // Ingest has stored everything once the marker's query row is visible through the API.
    const analyst = await vigil.token('carol', { roles: ['analyst'] });
    const api = async (path: string) => (await fetch(`http://127.0.0.1:${vigil.apiPort}${path}`, { headers: { authorization: `Bearer ${analyst}` } })).json() as Promise<any>;
    for (let i = 0; ; i++) {
      const sessions = (await api('/api/sessions?sub=agent-7&limit=10')).items ?? [];
      const details = await Promise.all(sessions.map((s: { session_id: string }) => api(`/api/sessions/${s.session_id}`)));
      const all = details.flatMap((d) => d.queries ?? []);
      if (all.some((q: { statement: string }) => q.statement.includes(`done-${S}`)) && all.some((q: { statement: string }) => q.statement.startsWith('COPY'))) break;
      assert.ok(i < 240, 'ingest stored the session within 60 s');
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    code = await vigil.stop();
  }
  assert.equal(code, 0, vigil.output());
  assert.ok(!leaks(vigil.output()), 'the process output holds the secret');

  // ClickHouse: every stored row of queries and events.
  const store = await openStore({ kind: 'chdb', path: `${vigil.dataDir}/clickhouse` });
  try {
    const rows = async (sql: string) => (await (await store.query({ query: sql, format: 'JSONEachRow' })).json()) as Record<string, any>[];
    const queries = await rows('SELECT statement, params, error, preview_columns, preview_rows FROM queries FINAL');
    const events = await rows('SELECT type, detail FROM events FINAL');
    assert.ok(queries.length >= maskCorpus(S).length * 2 + SENT.length, `${queries.length} query rows`);
    for (const q of queries) assert.ok(!leaks(q), `a queries row holds the secret: ${JSON.stringify(q)}`);
    for (const e of events) assert.ok(!leaks(e), `an events row holds the secret: ${JSON.stringify(e)}`);
    // What was stored, masked (so the absence above is not an absence of rows).
    const text = JSON.stringify(queries);
    assert.ok(queries.some((q) => q.statement === `SELECT id FROM customers WHERE ssn = '[REDACTED]'`), 'a compared literal, masked');
    assert.ok(queries.some((q) => q.statement === `INSERT INTO customers (id, ssn) VALUES (50, '[REDACTED]')`), 'an inserted literal, masked');
    assert.ok(queries.some((q) => q.statement === 'UPDATE customers SET ssn = $1 WHERE id = $2' && q.params[0] === '[REDACTED]' && q.params[1] === '1'), 'a bound parameter, masked by its column');
    assert.ok(queries.some((q) => q.preview_rows.some((r: (string | null)[]) => r.includes('[REDACTED]'))), 'previews hold the masked values');
    assert.ok(text.includes('************1111') && !text.includes('4111111111111111'), 'the card: partially masked in previews, never whole');
    const detail = (type: string) => events.filter((e) => e.type === type).map((e) => JSON.parse(e.detail));
    assert.ok(detail('policy.blocked').some((d) => d.statement.includes("ssn <> '[REDACTED]'")), 'the blocked statement, masked');
    assert.ok(detail('approval.requested').some((d) => d.statement.includes("c.ssn = '[REDACTED]'")), 'the held statement, masked');
  } finally {
    await releaseStore(store);
  }

  // The event log: every byte of every file under the log directory.
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(join(vigil.dataDir, 'log'));
  const logText = files.map((f) => readFileSync(f).toString('latin1')).join('\n');
  assert.ok(logText.length > 0);
  if (maskBeforeLog) assert.ok(!leaks(logText), 'with mask_before_log the event log holds the secret');
  else assert.ok(logText.includes(SECRET), 'without mask_before_log the log holds what the client sent (the search can find it)');
}

test('ClickHouse holds no form of the secret (mask_before_log off); the log holds what the client sent', () => run(false));
test('ClickHouse and the event log hold no form of the secret (mask_before_log on)', () => run(true));
