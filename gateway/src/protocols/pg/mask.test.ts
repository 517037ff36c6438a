/**
 * Integration: inline masking through the REAL gateway against the real PostgreSQL. A table-driven
 * corpus of attempts to read a masked column by another route, each run in the simple protocol
 * and in the extended protocol (Parse/Bind/Execute, no Describe from the client, so the gateway's
 * own Describe is exercised), must come back masked or blocked — checked in what the client
 * receives and in every s2c frame of the event log.
 *
 * The secret is shaped so that no value detector recognises it: only column rules and lineage can
 * hide it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { MaskApplied } from '@vigil/schemas';
import { startPolicyHarness, connect, RawPg, wire, type PolicyHarness } from './testkit.ts';
import { randomBytes } from 'node:crypto';
import { maskCorpus, maskCorpusSetup, leaks, SECRET } from './mask-corpus.ts';

const S = `mask_${randomBytes(4).toString('hex')}`;
const POLICY = `version: 1
rules:
  - id: no-ssn
    mask: { columns: ['${S}.customers.ssn'], strategy: redact }
  - id: cards
    mask: { detectors: [card], strategy: partial, keep_last: 4 }
`;

let ph: PolicyHarness;
let c: pg.Client;

before(async () => {
  ph = await startPolicyHarness(POLICY);
  const d = ph.direct;
  await d.query(maskCorpusSetup(S));
  c = await connect(ph.h, 'analyst');
  await c.query(`SET search_path TO ${S}, public`);
});
after(async () => {
  await c?.end();
  await ph.direct.query(`DROP SCHEMA ${S} CASCADE`);
  await ph.close();
});

const T = 'customers';
const CORPUS = maskCorpus(S);

const REDACTED = '[REDACTED]';

async function check(sql: string, blocked: boolean | undefined, extended: boolean): Promise<void> {
  const q = extended ? { text: sql, queryMode: 'extended' as const } : sql;
  if (blocked) {
    await assert.rejects(c.query(q), (e: { code?: string; message: string }) => {
      assert.equal(e.code, '42501', e.message);
      assert.match(e.message, /masked column|masking/);
      return true;
    });
    return;
  }
  const r = await c.query(q);
  assert.ok(r.rows.length > 0, 'rows returned');
  assert.ok(!leaks(r.rows), `leaked: ${JSON.stringify(r.rows)}`);
  assert.ok(JSON.stringify(r.rows).includes(REDACTED), `no masked value in ${JSON.stringify(r.rows)}`);
}

for (const { sql, blocked } of CORPUS) {
  test(`simple: ${sql}`, () => check(sql, blocked, false));
  test(`extended: ${sql}`, () => check(sql, blocked, true));
}

test('the corpus has at least 60 routes', () => assert.ok(CORPUS.length >= 60));

test('unmasked columns are untouched; a card number in a free-text column is partially masked by the detector', async () => {
  const r = await c.query(`SELECT id, name, note FROM ${T}`);
  assert.deepEqual(r.rows, [{ id: 1, name: 'alice', note: 'card ************1111' }]);
  const p = await c.query({ text: `SELECT id, name FROM ${T} WHERE id = $1`, values: [1] });
  assert.deepEqual(p.rows, [{ id: 1, name: 'alice' }]);
});

test('an error that would echo the masked value is scrubbed', async () => {
  for (const extended of [false, true]) {
    const sql = `SELECT ssn::int FROM ${T}`;
    await assert.rejects(extended ? c.query({ text: sql, queryMode: 'extended' } as pg.QueryConfig) : c.query(sql), (e: { code?: string; message: string }) => {
      assert.equal(e.code, '22P02');
      assert.ok(!leaks(e.message), e.message);
      return true;
    });
  }
  assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'session usable');
});

test('cursors: DECLARE then FETCH (simple), and SQL PREPARE/EXECUTE', async () => {
  const res = (await c.query(`BEGIN; DECLARE cur CURSOR FOR SELECT id, ssn FROM ${T}; FETCH ALL FROM cur; COMMIT`)) as unknown as pg.QueryResult[];
  const fetched = res[2]!;
  assert.deepEqual(fetched.rows, [{ id: 1, ssn: REDACTED }]);
  const ex = (await c.query(`PREPARE pq AS SELECT upper(ssn) FROM ${T}; EXECUTE pq; DEALLOCATE pq`)) as unknown as pg.QueryResult[];
  assert.ok(!leaks(ex[1]!.rows) && JSON.stringify(ex[1]!.rows).includes(REDACTED), JSON.stringify(ex[1]!.rows));
});

async function rawLogin(): Promise<RawPg> {
  const r = await RawPg.login(ph.h.port, 'analyst', await ph.h.issuer.mint('analyst'), 'main', {});
  r.send(wire.query(`SET search_path TO ${S}, public`));
  await r.until('Z');
  return r;
}

test('COPY TO STDOUT in text, csv and binary formats: masked', async () => {
  const r = await rawLogin();
  for (const sql of [`COPY (SELECT id, upper(ssn) FROM ${T}) TO STDOUT`, `COPY ${T} TO STDOUT (FORMAT csv, HEADER)`, `COPY ${T} (ssn) TO STDOUT (FORMAT binary)`]) {
    r.send(wire.query(sql));
    const msgs = await r.until('Z');
    const data = Buffer.concat(msgs.filter((m) => m[0] === 0x64).map((m) => m.subarray(5)));
    assert.ok(data.length > 0, sql);
    assert.ok(!leaks(data.toString('latin1')), `${sql}: ${data.toString('latin1')}`);
    if (!sql.includes('binary')) assert.ok(data.toString().includes(REDACTED), data.toString());
    else assert.ok(data.includes(Buffer.from([0xff, 0xff, 0xff, 0xff])), 'binary: masked value sent as NULL');
  }
  r.close();
});

test('binary result format through Bind: masked column retyped as text', async () => {
  const r = await rawLogin();
  const bind = Buffer.concat([Buffer.from('B'), Buffer.alloc(4), Buffer.from('\0\0'), Buffer.from([0, 0, 0, 0, 0, 1, 0, 1])]);
  bind.writeUInt32BE(bind.length - 1, 1);
  r.send(Buffer.concat([wire.parse('', `SELECT ssn, id FROM ${T}`), bind, wire.execute(), wire.sync()]));
  const msgs = await r.until('Z');
  const row = msgs.find((m) => m[0] === 0x44)!;
  assert.ok(row, 'a DataRow');
  assert.ok(!leaks(row.toString('latin1')));
  assert.ok(row.includes(Buffer.from(REDACTED)));
  assert.ok(!msgs.some((m) => m[0] === 0x54), 'the gateway-added Describe is not shown to the client');
  r.close();
});

test('the event log holds masked results and mask.applied counts, never the value', async () => {
  await ph.h.sink.drain();
  const events = ph.h.events();
  const frames = events.filter((e) => e.type === 'frame' && e.direction === 's2c');
  assert.ok(frames.length > 0);
  for (const f of frames) if (f.type === 'frame') assert.ok(!leaks(Buffer.from(f.data).toString('latin1')), 'an s2c frame holds the secret');
  const applied = events.filter((e): e is MaskApplied => e.type === 'mask.applied');
  assert.ok(applied.length >= CORPUS.length);
  for (const a of applied) assert.ok(!leaks(a));
  const direct = applied.find((a) => a.columns.some((col) => col.source === `${S}.customers.ssn` && col.rule_id === 'no-ssn' && col.count === 1));
  assert.ok(direct, 'a column count names the source and the rule');
  assert.ok(applied.some((a) => a.detectors.some((d) => d.detector === 'card' && d.count >= 1)));
});
