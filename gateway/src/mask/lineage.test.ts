/** Lineage over real parse trees (libpg-query) with an in-memory catalog. */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadModule, parseSync } from 'libpg-query';
import { lineageOf, type CatalogLookup, type RelationInfo } from './lineage.ts';

type Obj = Record<string, unknown>;
const parse = (sql: string): Obj => (parseSync(sql) as { stmts: { stmt: Obj }[] }).stmts[0]!.stmt;

function rel(schema: string, name: string, columns: string[], kind = 'r', view?: string, system = false): RelationInfo {
  return { schema, name, kind, columns, system, viewQuery: () => (view ? (parse(view).SelectStmt as Obj) : undefined) };
}
const RELS: RelationInfo[] = [
  rel('public', 'customers', ['id', 'name', 'ssn', 'email']),
  rel('public', 'orders', ['id', 'customer_id', 'total']),
  rel('public', 'v_cust', ['id', 'tax_id'], 'v', 'SELECT id, upper(ssn) AS tax_id FROM public.customers'),
  rel('public', 'v_nested', ['x'], 'v', 'SELECT tax_id || name AS x FROM v_cust JOIN customers USING (id)'),
  rel('pg_catalog', 'pg_stats', ['attname', 'most_common_vals'], 'v', undefined, true),
  rel('pg_catalog', 'pg_class', ['oid', 'relname'], 'r', undefined, true),
];
const catalog: CatalogLookup = {
  relations: (schema, name) => RELS.filter((r) => r.name === name && (schema === undefined || r.schema === schema)),
};

before(async () => loadModule());

/** Sources per output column, "!" marking an opaque one. */
function outs(sql: string): string[] {
  const l = lineageOf(parse(sql), catalog);
  return l.outputs.map((o) => [...o.sources].sort().join(',') + (o.opaque ? '!' : ''));
}
const SSN = 'public.customers.ssn';

const CASES: [string, string[]][] = [
  ['SELECT ssn FROM customers', [SSN]],
  ['SELECT c.ssn AS x, name FROM customers c', [SSN, 'public.customers.name']],
  ["SELECT ssn::text || '-' || upper(name) FROM customers", [`public.customers.name,${SSN}`]],
  ["SELECT CASE WHEN id > 0 THEN ssn ELSE 'n/a' END FROM customers", [`public.customers.id,${SSN}`]],
  ['SELECT (SELECT max(ssn) FROM customers) AS m', [SSN]],
  ['SELECT x FROM (SELECT ssn AS x FROM customers) s', [SSN]],
  ['WITH w(a) AS (SELECT ssn FROM customers) SELECT a FROM w', [SSN]],
  ['SELECT id FROM orders UNION SELECT ssn::int FROM customers', [`public.customers.ssn,public.orders.id`]],
  ['SELECT o.total, c.ssn FROM orders o JOIN customers c ON c.id = o.customer_id', ['public.orders.total', SSN]],
  ['SELECT row_to_json(c) FROM customers c', ['public.customers.email,public.customers.id,public.customers.name,public.customers.ssn']],
  ['SELECT json_agg(c.*) FROM customers c', ['public.customers.email,public.customers.id,public.customers.name,public.customers.ssn']],
  ["SELECT string_agg(ssn, ',') , array_agg(email) FROM customers", [SSN, 'public.customers.email']],
  ['SELECT tax_id FROM v_cust', ['public.customers.ssn,public.v_cust.tax_id']],
  ['SELECT x FROM v_nested', ['public.customers.name,public.customers.ssn,public.v_cust.tax_id,public.v_nested.x']],
  ['TABLE customers', ['public.customers.id', 'public.customers.name', SSN, 'public.customers.email']],
  ['SELECT * FROM customers JOIN orders USING (id)', ['public.customers.id', 'public.customers.name', SSN, 'public.customers.email', 'public.orders.id', 'public.orders.customer_id', 'public.orders.total']],
  ['SELECT my_func(id) FROM customers', ['public.customers.id!']],
  ["SELECT table_to_xml('customers', true, false, '')", ['!']],
  ['SELECT most_common_vals FROM pg_stats', ['!']],
  ['SELECT relname FROM pg_class', ['pg_catalog.pg_class.relname']],
  ['SELECT t.* FROM (SELECT ssn FROM customers) t', [SSN]],
  ['SELECT (c).ssn FROM customers c', ['public.customers.email,public.customers.id,public.customers.name,public.customers.ssn']],
  ['SELECT ARRAY(SELECT ssn FROM customers)', [SSN]],
  ['SELECT s FROM customers, LATERAL unnest(ARRAY[ssn]) AS u(s)', [SSN]],
  ['SELECT 1 FROM customers WHERE ssn IS NOT NULL', ['']],
  ['WITH RECURSIVE r(v) AS (SELECT ssn FROM customers UNION ALL SELECT v FROM r) SELECT v FROM r', [SSN]],
  ['VALUES (1, 2)', ['', '']],
  ['SELECT ssn FROM nowhere', ['!']],
  ['DECLARE cur CURSOR FOR SELECT email FROM customers', ['public.customers.email']],
  ['COPY (SELECT ssn FROM customers) TO STDOUT', [SSN]],
  ['COPY customers (ssn, id) TO STDOUT', [SSN, 'public.customers.id']],
  ['UPDATE customers SET name = name RETURNING ssn', [SSN]],
];

for (const [sql, want] of CASES) {
  test(`lineage: ${sql}`, () => assert.deepEqual(outs(sql), want));
}

test('star over an unknown relation: shape unknown, opaque', () => {
  const l = lineageOf(parse('SELECT * FROM nowhere'), catalog);
  assert.equal(l.shapeKnown, false);
  assert.deepEqual(l.unknownRelations, ['nowhere']);
});

test('reads include WHERE; written holds what INSERT…SELECT, UPDATE SET, CTAS store', () => {
  assert.ok(lineageOf(parse("SELECT id FROM customers WHERE ssn = '1'"), catalog).reads.sources.has(SSN));
  assert.ok(lineageOf(parse('INSERT INTO orders (id) SELECT ssn::int FROM customers'), catalog).written.sources.has(SSN));
  assert.ok(lineageOf(parse('UPDATE customers SET name = ssn'), catalog).written.sources.has(SSN));
  assert.ok(lineageOf(parse('CREATE TABLE x AS SELECT * FROM customers'), catalog).written.sources.has(SSN));
  assert.ok(lineageOf(parse('SELECT ssn INTO x FROM customers'), catalog).written.sources.has(SSN));
  assert.ok(!lineageOf(parse("UPDATE customers SET name = 'x' WHERE ssn = '1'"), catalog).written.sources.has(SSN));
  assert.ok(lineageOf(parse('WITH m AS (INSERT INTO orders (id) SELECT ssn::int FROM customers RETURNING id) SELECT 1'), catalog).written.sources.has(SSN));
});

test('storing a value back into the column it came from is not a copy; into any other column it is', () => {
  for (const sql of ["UPDATE customers SET ssn = ssn || 'x'", 'UPDATE customers c SET ssn = upper(c.ssn)', "UPDATE public.customers SET ssn = replace(ssn, '-', '')"]) {
    const l = lineageOf(parse(sql), catalog);
    assert.ok(!l.written.sources.has(SSN), sql);
    assert.ok(l.reads.sources.has(SSN), `${sql}: still a read of the masked column (errors are scrubbed)`);
  }
  for (const sql of ['UPDATE customers SET name = ssn, ssn = ssn', 'UPDATE customers SET ssn = ssn, name = ssn || name']) {
    assert.ok(lineageOf(parse(sql), catalog).written.sources.has(SSN), sql);
  }
});
