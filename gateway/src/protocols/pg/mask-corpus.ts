/**
 * The masking corpus (issue 3, "Masking" acceptance): attempts to read a masked column by another
 * route, each of which must come back masked or be blocked. Shared by the gateway's inline test
 * (mask.test.ts: what the client receives and the log's s2c frames) and the end-to-end test of what
 * is stored (test/e2e/masking-at-rest.test.ts: ClickHouse, and the log with mask_before_log).
 *
 * The secret is shaped so that no value detector recognises it: only column rules and lineage can
 * hide it. `leaks` looks for it, reversed (reverse()) and base64-encoded (encode(…, 'base64')).
 */
export const SECRET = 'SSN-SECRET-4242';

export const leaks = (v: unknown): boolean => /secret|terces|U1NOLVNFQ1JFVC00MjQy/i.test(typeof v === 'string' ? v : JSON.stringify(v));

/** Schema `S` with customers(ssn) holding SECRET, a card number in a free-text column, views, functions. */
export function maskCorpusSetup(S: string): string {
  return `CREATE SCHEMA ${S};
    CREATE TABLE ${S}.customers (id int PRIMARY KEY, name text, ssn text, note text);
    INSERT INTO ${S}.customers VALUES (1, 'alice', '${SECRET}', 'card 4111111111111111');
    CREATE TABLE ${S}.orders (id int, cid int, total int);
    INSERT INTO ${S}.orders VALUES (1, 1, 10);
    CREATE VIEW ${S}.v AS SELECT id, upper(ssn) AS tax FROM ${S}.customers;
    CREATE VIEW ${S}.v2 AS SELECT tax || '' AS x FROM ${S}.v;
    CREATE MATERIALIZED VIEW ${S}.mv AS SELECT id, ssn FROM ${S}.customers;
    CREATE FUNCTION ${S}.get_ssn(i int) RETURNS text LANGUAGE sql AS $$ SELECT ssn FROM ${S}.customers WHERE id = i $$;
    CREATE FUNCTION ${S}.all_rows() RETURNS SETOF ${S}.customers LANGUAGE sql AS $$ SELECT * FROM ${S}.customers $$;`;
}

/** Attempts to read `S`.customers.ssn another way (search_path set to S); `blocked` ones must be refused (42501). */
export function maskCorpus(S: string): { sql: string; blocked?: boolean }[] {
  const T = 'customers';
  return [
  { sql: `SELECT ssn FROM ${T}` },
  { sql: `SELECT ssn AS x FROM ${T}` },
  { sql: `SELECT c.ssn FROM ${T} c` },
  { sql: `SELECT ${S}.customers.ssn FROM ${S}.customers` },
  { sql: `SELECT ssn::text FROM ${T}` },
  { sql: `SELECT CAST(ssn AS varchar(50)) FROM ${T}` },
  { sql: `SELECT ssn || '' FROM ${T}` },
  { sql: `SELECT upper(ssn) FROM ${T}` },
  { sql: `SELECT lower(ssn) FROM ${T}` },
  { sql: `SELECT reverse(ssn) FROM ${T}` },
  { sql: `SELECT substr(ssn, 1, 40) FROM ${T}` },
  { sql: `SELECT left(ssn, 100) FROM ${T}` },
  { sql: `SELECT md5(ssn) FROM ${T}` },
  { sql: `SELECT concat('x', ssn) FROM ${T}` },
  { sql: `SELECT format('%s', ssn) FROM ${T}` },
  { sql: `SELECT regexp_replace(ssn, 'X', 'Y') FROM ${T}` },
  { sql: `SELECT translate(ssn, 'S', 's') FROM ${T}` },
  { sql: `SELECT encode(convert_to(ssn, 'UTF8'), 'base64') FROM ${T}` },
  { sql: `SELECT CASE WHEN id > 0 THEN ssn ELSE 'none' END FROM ${T}` },
  { sql: `SELECT coalesce(ssn, 'n') FROM ${T}` },
  { sql: `SELECT nullif(ssn, '') FROM ${T}` },
  { sql: `SELECT greatest(ssn, '') FROM ${T}` },
  { sql: `SELECT (SELECT ssn FROM ${T} LIMIT 1)` },
  { sql: `SELECT x FROM (SELECT ssn AS x FROM ${T}) s` },
  { sql: `WITH w AS (SELECT ssn FROM ${T}) SELECT * FROM w` },
  { sql: `WITH w(a) AS (SELECT ssn FROM ${T}) SELECT upper(a) FROM w` },
  { sql: `WITH RECURSIVE r(v) AS (SELECT ssn FROM ${T} UNION ALL SELECT v FROM r WHERE false) SELECT v FROM r` },
  { sql: `SELECT * FROM ${T}` },
  { sql: `SELECT c.* FROM ${T} c` },
  { sql: `TABLE ${T}` },
  { sql: `SELECT t FROM ${T} t` },
  { sql: `SELECT t::text FROM ${T} t` },
  { sql: `SELECT (t).ssn FROM ${T} t` },
  { sql: `SELECT row_to_json(t) FROM ${T} t` },
  { sql: `SELECT to_jsonb(t) FROM ${T} t` },
  { sql: `SELECT to_json(ssn) FROM ${T}` },
  { sql: `SELECT json_agg(t) FROM ${T} t` },
  { sql: `SELECT jsonb_agg(ssn) FROM ${T}` },
  { sql: `SELECT array_agg(ssn) FROM ${T}` },
  { sql: `SELECT string_agg(ssn, ',') FROM ${T}` },
  { sql: `SELECT json_build_object('s', ssn) FROM ${T}` },
  { sql: `SELECT jsonb_build_array(ssn) FROM ${T}` },
  { sql: `SELECT xmlelement(name x, ssn) FROM ${T}` },
  { sql: `SELECT ROW(id, ssn) FROM ${T}` },
  { sql: `SELECT ARRAY[ssn] FROM ${T}` },
  { sql: `SELECT ARRAY(SELECT ssn FROM ${T})` },
  { sql: `SELECT ssn FROM ${T} UNION SELECT 'x'` },
  { sql: `SELECT 'x' UNION ALL SELECT ssn FROM ${T}` },
  { sql: `SELECT ssn FROM ${T} INTERSECT SELECT ssn FROM ${T}` },
  { sql: `SELECT ssn FROM ${T} EXCEPT SELECT 'x'` },
  { sql: `SELECT o.total, c.ssn FROM orders o JOIN ${T} c ON c.id = o.cid` },
  { sql: `SELECT * FROM orders o JOIN ${T} c ON c.id = o.cid` },
  { sql: `SELECT * FROM orders JOIN ${T} USING (id)` },
  { sql: `SELECT c.ssn FROM orders o LEFT JOIN ${T} c ON true` },
  { sql: `SELECT tax FROM v` },
  { sql: `SELECT * FROM v` },
  { sql: `SELECT x FROM v2` },
  { sql: `SELECT * FROM mv` },
  { sql: `SELECT unnest(ARRAY[ssn]) FROM ${T}` },
  { sql: `SELECT s FROM ${T}, LATERAL unnest(ARRAY[ssn]) u(s)` },
  { sql: `SELECT max(ssn) FROM ${T}` },
  { sql: `SELECT min(ssn) OVER () FROM ${T}` },
  { sql: `SELECT first_value(ssn) OVER (ORDER BY id) FROM ${T}` },
  { sql: `SELECT DISTINCT ssn FROM ${T}` },
  { sql: `SELECT ssn FROM ${T} ORDER BY 1 LIMIT 1` },
  { sql: `SELECT ssn FROM ${T} WHERE ssn LIKE 'SSN%'` },
  { sql: `SELECT get_ssn(1)` },
  { sql: `SELECT * FROM all_rows()` },
  { sql: `SELECT query_to_xml('select ssn from ${S}.customers', true, false, '')` },
  { sql: `SELECT table_to_xml('${S}.customers', true, false, '')` },
  { sql: `CREATE TEMP TABLE laundry AS SELECT ssn FROM ${T}`, blocked: true },
  { sql: `SELECT ssn INTO TEMP laundry2 FROM ${T}`, blocked: true },
  { sql: `INSERT INTO orders (id) SELECT length(ssn) FROM ${T}`, blocked: true },
  { sql: `UPDATE ${T} SET note = ssn`, blocked: true },
];
}
