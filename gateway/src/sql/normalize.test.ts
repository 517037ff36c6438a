/**
 * Numeric-literal normalisation of the analysis cache key: only digits of numeric literals change,
 * lengths never do, anything the scanner does not fully understand is left exact, and the analysis
 * of the normalised text equals the original's in everything but `text` (checked against the real
 * parser on tricky statements and on random mutations).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initSqlParser, analyse, createSqlAnalyser } from './analyse.ts';
import { normalizeNumerics } from './normalize.ts';

before(async () => {
  await initSqlParser();
});

test('numbers become ones of the same length; strings, identifiers, params, comments, dollar quotes stay', () => {
  const cases: [string, string | undefined][] = [
    ['SELECT abalance FROM pgbench_accounts WHERE aid = 48213;', 'SELECT abalance FROM pgbench_accounts WHERE aid = 11111;'],
    ["SELECT * FROM t2 WHERE c = '42' AND d = 7.25e-3", "SELECT * FROM t2 WHERE c = '42' AND d = 1.11e-1"],
    ['SELECT $2, a$3, "col 9" FROM x WHERE y > 40', 'SELECT $2, a$3, "col 9" FROM x WHERE y > 11'],
    ["SELECT E'it\\'s 5', 6", "SELECT E'it\\'s 5', 1"],
    ['SELECT $fn$ 99 $fn$, 98 -- 97\n, /* 96 /* 95 */ */ 94', 'SELECT $fn$ 99 $fn$, 11 -- 97\n, /* 96 /* 95 */ */ 11'],
    ['SELECT é2 FROM ü3 LIMIT 30', 'SELECT é2 FROM ü3 LIMIT 11'],
    ['SELECT varchar(255) :: int4, .5', 'SELECT varchar(111) :: int4, .1'],
    ['SELECT 1 FROM t', undefined], // nothing to change
    ['SELECT 0x1F', undefined], // hex literal: left exact
    ['SELECT 123abc', undefined], // glued number: left exact
    ["SELECT 'unterminated 5", undefined],
    ['SELECT /* open 5', undefined],
    ["SELECT 'a\\' , 5", undefined], // backslash in a standard string: depends on standard_conforming_strings
  ];
  for (const [input, expected] of cases) {
    const got = normalizeNumerics(input);
    assert.equal(got, expected, input);
    if (got !== undefined) assert.equal(got.length, input.length);
  }
});

const TRICKY = [
  'SELECT abalance FROM pgbench_accounts WHERE aid = 48213',
  'UPDATE pgbench_accounts SET abalance = abalance + -4227 WHERE aid = 90210',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 48213, -4227, CURRENT_TIMESTAMP)',
  'DELETE FROM t WHERE 2 > 1',
  'DELETE FROM t WHERE id = 5',
  'EXPLAIN (ANALYZE 1) DELETE FROM t',
  "SELECT set_config('role', 'admin', false), 3",
  'SELECT pg_terminate_backend(12345)',
  'COPY (SELECT 42) TO STDOUT',
  'SELECT * FROM t1 JOIN t22 ON t1.id = t22.id WHERE t1.x IN (1, 2, 30)',
  'WITH c AS (SELECT 5 AS n) SELECT n * 2.5 FROM c LIMIT 10 OFFSET 20',
  'SELECT 1; DROP TABLE t9; SELECT 99',
  'TRUNCATE t8; SELECT 77',
  'SELECT lo_export(16384, \'/tmp/x\')',
  "DO $$ BEGIN PERFORM 42; END $$",
  'SET statement_timeout = 5000',
  'SELECT ARRAY[1,2,3][2], 1e10, 3.14159, 1_000_000',
  'PREPARE p AS SELECT $1::int + 10; EXECUTE p(5)',
];

function same(a: string): void {
  const key = normalizeNumerics(a);
  if (key === undefined) return;
  const x = analyse(a);
  const y = analyse(key);
  assert.equal(y.length, x.length, a);
  for (let i = 0; i < x.length; i++) {
    const { text: _t1, error: _e1, position: _p1, ...rx } = x[i]!;
    const { text: _t2, error: _e2, position: _p2, ...ry } = y[i]!;
    assert.deepEqual(ry, rx, `${a}\n≠\n${key}`);
  }
}

test('the normalised text analyses the same as the original (tricky statements)', () => {
  for (const sql of TRICKY) same(sql);
  // ANALYZE 0 reads as ANALYZE 1 after normalisation: the stricter reading (it runs).
  const zero = createSqlAnalyser().analyseOne('EXPLAIN (ANALYZE 0) DELETE FROM t');
  assert.ok(zero.features.includes('dml_without_where'));
});

test('random digit mutations never change the analysis (fuzz against the real parser)', () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
  for (let round = 0; round < 400; round++) {
    const base = TRICKY[rnd(TRICKY.length)]!;
    const chars = [...base];
    for (let k = 0; k < 3; k++) {
      const at = rnd(chars.length);
      chars.splice(at, 0, String(rnd(10)));
    }
    same(chars.join(''));
  }
});

test('cached analyser: texts differing only in numbers share one parse and keep their own text', () => {
  const analyser = createSqlAnalyser();
  const a = analyser.analyse('SELECT abalance FROM pgbench_accounts WHERE aid = 48213');
  const b = analyser.analyse('SELECT abalance FROM pgbench_accounts WHERE aid = 90210');
  assert.equal(analyser.stats().misses, 1);
  assert.equal(analyser.stats().hits, 1);
  assert.equal(a[0]!.text, 'SELECT abalance FROM pgbench_accounts WHERE aid = 48213');
  assert.equal(b[0]!.text, 'SELECT abalance FROM pgbench_accounts WHERE aid = 90210');
  assert.deepEqual(b[0]!.relations, ['pgbench_accounts']);
  const multi = analyser.analyse('SELECT 5; TRUNCATE t7;  SELECT 66');
  assert.deepEqual(multi.map((x) => x.text), ['SELECT 5', 'TRUNCATE t7', 'SELECT 66']);
  assert.ok(multi[1]!.features.includes('truncate'));
  // A parse error reports the client's own text, not the normalised one.
  const bad = analyser.analyse('SELEC 42');
  assert.equal(bad[0]!.text, 'SELEC 42');
  assert.match(bad[0]!.error!, /syntax error/);
  assert.ok(Object.isFrozen(b[0]));
});
