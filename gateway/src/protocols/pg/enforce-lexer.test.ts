/**
 * Attacks on the gateway's reading of SQL text (found by a security review, confirmed against
 * PostgreSQL 15): settings that make the target lex the same bytes differently from the gateway's
 * parser. Each must leave the protected table in place.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPolicyHarness, RawPg, wire, type Harness, type PolicyHarness } from './testkit.ts';

let ph: PolicyHarness;
let h: Harness;
before(async () => {
  ph = await startPolicyHarness(
    'version: 1\nrules:\n  - id: agents-no-drop\n    match: { actor_kind: agent, features: { any: [drop, dml_without_where, dangerous_function] } }\n    block: true\n',
  );
  h = ph.h;
});
after(async () => ph.close());

const table = () => ph.table('vigil_lex', [0, 1]);
const exists = (t: string) => ph.exists(t);
const direct = { query: (sql: string) => ph.direct.query(sql) };
const agent = async (sub: string) => RawPg.login(h.port, sub, await h.issuer.mint(sub, { actor_kind: 'agent' }));
async function queries(c: RawPg, ...sql: string[]): Promise<void> {
  c.send(Buffer.concat(sql.map((s) => wire.query(s))));
  for (const _ of sql) await c.until('Z');
}

test('standard_conforming_strings=off (startup parameter or SET): a backslash cannot hide a statement', async () => {
  for (const how of ['startup', 'set'] as const) {
    const t = await table();
    const c =
      how === 'startup'
        ? await RawPg.login(h.port, `ag-scs-${how}`, await h.issuer.mint(`ag-scs-${how}`, { actor_kind: 'agent' }), 'main', { standard_conforming_strings: 'off' })
        : await agent(`ag-scs-${how}`);
    if (how === 'set') await queries(c, 'SET standard_conforming_strings = off');
    await queries(c, `SELECT 'x\\' -- '; DROP TABLE ${t}; --`);
    assert.equal(await exists(t), true, `${how}: the table survived`);
    c.close();
    await direct.query(`DROP TABLE ${t}`);
  }
});

test('client_encoding switched behind the gateway (UPDATE pg_settings, ROLLBACK of a SET): non-ASCII text cannot hide a statement', async () => {
  const attack = (t: string) => `SELECT E'\u3041\\'; DROP TABLE ${t}; --'`;
  const t1 = await table();
  const a = await agent('ag-enc-1');
  await queries(a, "UPDATE pg_settings SET setting = 'SJIS' WHERE name = 'client_encoding'", attack(t1));
  assert.equal(await exists(t1), true, 'pg_settings route: the table survived');
  a.close();
  const t2 = await table();
  const b = await agent('ag-enc-2');
  await queries(b, "SET client_encoding TO 'SJIS'");
  await queries(b, 'BEGIN', "SET client_encoding TO 'UTF8'");
  await queries(b, 'ROLLBACK', attack(t2));
  assert.equal(await exists(t2), true, 'ROLLBACK route: the table survived');
  b.close();
  await direct.query(`DROP TABLE ${t1}; DROP TABLE ${t2}`);
});

test('a quiet UTF-8 connection still analyses (and allows) ordinary non-ASCII and backslash text', async () => {
  const c = await agent('ag-ok');
  c.send(wire.query("SELECT 'grüße' AS a, E'tab\\there' AS b"));
  const r = await c.until('Z');
  assert.ok(r.some((m) => m[0] === 0x44), 'a row came back');
  assert.ok(!r.some((m) => m[0] === 0x45), 'no error');
  c.close();
});

test('a Bind of a statement the gateway never analysed (SQL PREPARE) is judged unparsable, not let through', async () => {
  const c = await agent('ag-bind');
  await queries(c, 'PREPARE vigil_sqlprep AS SELECT 42');
  c.send(Buffer.concat([wire.bind('vigil_sqlprep', []), wire.execute(), wire.sync()]));
  const r = await c.until('Z');
  assert.ok(r.some((m) => m[0] === 0x45), 'refused');
  assert.ok(!r.some((m) => m[0] === 0x44), 'nothing ran');
  // Control: a statement the gateway parsed itself binds and runs.
  c.send(Buffer.concat([wire.parse('vigil_known', 'SELECT 7'), wire.bind('vigil_known', []), wire.execute(), wire.sync()]));
  const ok = await c.until('Z');
  assert.ok(ok.some((m) => m[0] === 0x44), 'the known statement ran');
  c.close();
});
