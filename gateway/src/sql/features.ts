/**
 * Statement features: the vocabulary shared by the SQL analyser (gateway/src/sql) and the policy
 * engine (gateway/src/policy). A policy rule matches on these; the analyser derives them from the
 * real PostgreSQL parse tree (libpg-query). One statement can have several.
 */
export const STATEMENT_FEATURES = [
  'read', // SELECT / TABLE / VALUES / SHOW / EXPLAIN without ANALYZE of a write
  'write', // INSERT / UPDATE / DELETE / MERGE / COPY FROM
  'ddl', // CREATE / ALTER / DROP / TRUNCATE / COMMENT / RENAME of any object
  'drop', // DROP of any object
  'truncate', // TRUNCATE
  'alter', // ALTER of any object
  'dml_without_where', // UPDATE or DELETE without a WHERE clause
  'grant', // GRANT / REVOKE (privileges or role membership)
  'role_change', // SET ROLE, SET SESSION AUTHORIZATION, RESET ROLE
  'role_admin', // CREATE/ALTER/DROP ROLE or USER
  'copy_program', // COPY … TO/FROM PROGRAM
  'copy_file', // COPY … TO/FROM a server file
  'copy_out', // COPY … TO STDOUT
  'copy_in', // COPY … FROM STDIN
  'alter_system', // ALTER SYSTEM
  'dangerous_function', // pg_terminate_backend, pg_cancel_backend, lo_import/lo_export, pg_read_file, dblink*, pg_reload_conf, …
  'do_block', // DO $$ … $$
  'function_call', // CALL, or a SELECT whose targets call a non-builtin function
  'transaction_control', // BEGIN / COMMIT / ROLLBACK / SAVEPOINT / PREPARE TRANSACTION
  'session_setting', // SET / RESET other than roles
  'prepared', // PREPARE / EXECUTE / DEALLOCATE
  'cursor', // DECLARE / FETCH / MOVE / CLOSE
  'listen_notify', // LISTEN / NOTIFY / UNLISTEN
  'unparsable', // the parser rejected it
] as const;

export type StatementFeature = (typeof STATEMENT_FEATURES)[number];

/** What the analyser says about one statement. */
export interface StatementAnalysis {
  /** The statement's text (one statement of a possibly multi-statement string). */
  text: string;
  /** The parse tree's top-level node type, e.g. 'SelectStmt', 'DropStmt'; 'unparsable' if none. */
  kind: string;
  features: StatementFeature[];
  /** Tables and views referenced, schema-qualified when written so: ['public.users', 'orders']. */
  relations: string[];
  /** Functions called, lower-cased, schema-qualified when written so. */
  functions: string[];
  /** Parser error message, for 'unparsable'. */
  error?: string;
}
