/**
 * Statement masking over real parse trees: literals that meet a masked column (compared, assigned,
 * inserted) are replaced token for token, others stay; with the policy-derived catalog (ingest) and
 * with a full catalog (gateway), hash values equal the engine's hash of the value, detectors run.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadModule } from 'libpg-query';
import { createMaskEngine } from './engine.ts';
import { loadPolicy, evaluate } from '../policy/index.ts';
import { maskParams, maskStatementText, scrubValues } from './literals.ts';
import { policyCatalog } from './policy-catalog.ts';
import type { CatalogLookup, RelationInfo } from './lineage.ts';
import { agent, ctx } from '../policy/testkit.ts';

before(() => loadModule());

const policy = loadPolicy(`version: 1
rules:
  - id: ssn
    mask: { columns: ['crm.customers.ssn'], strategy: redact }
  - id: mail
    mask: { columns: ['customers.email'], strategy: hash }
  - id: cards
    mask: { columns: ['payments.card_*'], strategy: partial, keep_last: 4 }
  - id: det
    mask: { detectors: [us_ssn], strategy: redact }
`);
const engine = createMaskEngine({ hashKey: 'k' });
const directives = evaluate(policy, ctx(agent)).mask;
const plan = engine.plan(directives);
const pc = policyCatalog(directives);
const m = (sql: string) => maskStatementText(sql, plan, pc);
const hashOf = (v: string) => plan.maskWhole(v, Buffer.from(v), plan.column('crm.customers.email')!);

const CASES: [string, string][] = [
  ["SELECT id FROM customers WHERE ssn = 'SECRET-1'", "SELECT id FROM customers WHERE ssn = '[REDACTED]'"],
  ["SELECT id FROM crm.customers c WHERE c.ssn IN ('A-SECRET', E'B\\'SECRET') AND id = 7", "SELECT id FROM crm.customers c WHERE c.ssn IN ('[REDACTED]', '[REDACTED]') AND id = 7"],
  ["SELECT 1 FROM customers WHERE upper(ssn) LIKE 'SEC%' OR strpos(ssn, 'CRET') > 0", "SELECT 1 FROM customers WHERE upper(ssn) LIKE '[REDACTED]' OR strpos(ssn, '[REDACTED]') > '[REDACTED]'"],
  ["SELECT name FROM customers WHERE name = 'alice'", "SELECT name FROM customers WHERE name = 'alice'"],
  ["SELECT name FROM other.customers WHERE ssn = 'SECRET-1'", "SELECT name FROM other.customers WHERE ssn = 'SECRET-1'"],
  ["INSERT INTO customers (id, ssn, name) VALUES (1, 'SECRET-1', 'bob'), (2, 'SECRET-2', 'eve')", "INSERT INTO customers (id, ssn, name) VALUES (1, '[REDACTED]', 'bob'), (2, '[REDACTED]', 'eve')"],
  ["INSERT INTO customers VALUES (1, 'SECRET-1')", "INSERT INTO customers VALUES ('[REDACTED]', '[REDACTED]')"],
  ["INSERT INTO customers (id, ssn) SELECT 3, 'SECRET-3'", "INSERT INTO customers (id, ssn) SELECT 3, '[REDACTED]'"],
  ["INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET ssn = 'SECRET-4'", "INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET ssn = '[REDACTED]'"],
  ["UPDATE customers SET ssn = 'SECRET-5', name = 'x' WHERE id = 1", "UPDATE customers SET ssn = '[REDACTED]', name = 'x' WHERE id = 1"],
  ["WITH w AS (SELECT ssn AS s FROM customers) SELECT * FROM w WHERE s = 'SECRET-6'", "WITH w AS (SELECT ssn AS s FROM customers) SELECT * FROM w WHERE s = '[REDACTED]'"],
  ["SELECT * FROM customers WHERE CASE ssn WHEN 'SECRET-7' THEN true END", "SELECT * FROM customers WHERE CASE ssn WHEN '[REDACTED]' THEN true END"],
  ["SELECT * FROM customers WHERE ssn IN (SELECT 'SECRET-8')", "SELECT * FROM customers WHERE ssn IN (SELECT '[REDACTED]')"],
  ["MERGE INTO customers c USING (SELECT 1 AS id) s ON c.id = s.id WHEN MATCHED THEN UPDATE SET ssn = 'SECRET-9' WHEN NOT MATCHED THEN INSERT (id, ssn) VALUES (1, 'SECRET-A')", "MERGE INTO customers c USING (SELECT 1 AS id) s ON c.id = s.id WHEN MATCHED THEN UPDATE SET ssn = '[REDACTED]' WHEN NOT MATCHED THEN INSERT (id, ssn) VALUES (1, '[REDACTED]')"],
    // A column glob: the table's unlisted columns are undecidable (strongest column rule), amount included.
  ["SELECT * FROM payments WHERE card_no = '4111 1111 1111 1111' AND amount = 5", "SELECT * FROM payments WHERE card_no = '[REDACTED]' AND amount = '[REDACTED]'"],
  ["SELECT * FROM customers WHERE (ssn, name) = ('SECRET-R', 'bob')", "SELECT * FROM customers WHERE (ssn, name) = ('[REDACTED]', '[REDACTED]')"],
  ["SELECT 1; SELECT id FROM customers WHERE ssn = 'SECRET-B' -- trailing", "SELECT 1; SELECT id FROM customers WHERE ssn = '[REDACTED]' -- trailing"],
  ["SELECT 'é' AS x, ssn FROM customers WHERE ssn = 'ü-SECRET'", "SELECT 'é' AS x, ssn FROM customers WHERE ssn = '[REDACTED]'"],
  ["SELECT 'my ssn 123-45-6789'", "SELECT 'my ssn [REDACTED:us_ssn]'"],
];

for (const [sql, want] of CASES) test(`masks: ${sql}`, () => assert.equal(m(sql).text, want));

test('hash: the literal is replaced by the engine hash of its value (joins with masked results)', () => {
  const r = m("SELECT id FROM customers WHERE email = 'x@corp.example'");
  assert.equal(r.text, `SELECT id FROM customers WHERE email = '${hashOf('x@corp.example')}'`);
  assert.match(r.text, /'hmac:[0-9a-f]{32}'/);
});

test('parameters meeting a masked column take its strategy; others pass the detectors', () => {
  const r = m('SELECT * FROM customers WHERE ssn = $1 AND name = $2 AND email = $3');
  assert.deepEqual([...r.params.keys()].sort(), [1, 3]);
  assert.deepEqual(maskParams(['SECRET-P', 'bob 123-45-6789', 'x@corp.example', null], r.params, plan), ['[REDACTED]', 'bob [REDACTED:us_ssn]', hashOf('x@corp.example'), null]);
  const u = m('UPDATE customers SET ssn = $2 WHERE id = $1');
  assert.deepEqual([...u.params.keys()], [2]);
  const ins = m('INSERT INTO customers (id, ssn) VALUES ($1, $2)');
  assert.deepEqual([...ins.params.keys()], [2]);
});

test('unparsable text under column rules: every constant is masked', () => {
  const r = m("SELEC ssn FROM customers WHERE ssn = 'SECRET-X' AND n = 42");
  assert.equal(r.text, "SELEC ssn FROM customers WHERE ssn = '[REDACTED]' AND n = '[REDACTED]'");
});

test('echoes of masked literals are scrubbed', () => {
  const r = m("SELECT ssn::int FROM customers WHERE ssn = 'SECRET-ECHO'");
  assert.deepEqual(r.values, ['SECRET-ECHO']);
  assert.equal(scrubValues('invalid input syntax: "SECRET-ECHO"', r.values), 'invalid input syntax: "[REDACTED]"');
});

test('with a full catalog (gateway): views are followed and positions are known', () => {
  const parse = (s: string) => (require_parse(s));
  const rels: RelationInfo[] = [
    { schema: 'crm', name: 'customers', kind: 'r', columns: ['id', 'name', 'ssn'], system: false, viewQuery: () => undefined },
    { schema: 'crm', name: 'v', kind: 'v', columns: ['id', 'tax'], system: false, viewQuery: () => parse('SELECT id, upper(ssn) AS tax FROM crm.customers') },
  ];
  const catalog: CatalogLookup = { relations: (s, n) => rels.filter((r) => r.name === n && (s === undefined || r.schema === s)) };
  assert.equal(maskStatementText("SELECT id FROM v WHERE tax = 'SECRET-V'", plan, catalog).text, "SELECT id FROM v WHERE tax = '[REDACTED]'");
  assert.equal(maskStatementText("INSERT INTO customers VALUES (1, 'bob', 'SECRET-I')", plan, catalog).text, "INSERT INTO customers VALUES (1, 'bob', '[REDACTED]')");
});

import { parseSync } from 'libpg-query';
function require_parse(sql: string): Record<string, unknown> {
  return (parseSync(sql) as { stmts: { stmt: { SelectStmt: Record<string, unknown> } }[] }).stmts[0]!.stmt.SelectStmt;
}
