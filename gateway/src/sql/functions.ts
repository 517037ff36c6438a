/**
 * Which function calls matter to policy. Names are matched on their last component, lower-cased:
 * `pg_catalog.pg_terminate_backend` and `"pg_terminate_backend"` are the same builtin, and extension
 * functions such as dblink are installed in whatever schema the DBA chose, so the schema cannot be
 * trusted to tell a harmless function from a dangerous one. Over-matching (a user function that
 * happens to share a dangerous name) only costs an approval; under-matching would let it through.
 */
import { readFileSync } from 'node:fs';

/** Builtins that kill sessions, touch the server's files, reach other servers, or change server state. */
const DANGEROUS_FUNCTIONS = new Set([
  // other sessions
  'pg_terminate_backend',
  'pg_cancel_backend',
  // server files (large objects to/from files, generic file access, adminpack)
  'lo_import',
  'lo_export',
  'pg_read_file',
  'pg_read_binary_file',
  'pg_ls_dir',
  'pg_stat_file',
  'pg_ls_logdir',
  'pg_ls_waldir',
  'pg_ls_tmpdir',
  'pg_ls_archive_statusdir',
  'pg_ls_logicalsnapdir',
  'pg_ls_logicalmapdir',
  'pg_ls_replslotdir',
  'pg_file_write',
  'pg_file_rename',
  'pg_file_unlink',
  'pg_file_sync',
  'pg_logdir_ls',
  // server state
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_wal_replay_pause',
  'pg_wal_replay_resume',
  'pg_create_physical_replication_slot',
  'pg_create_logical_replication_slot',
  'pg_drop_replication_slot',
  'pg_copy_physical_replication_slot',
  'pg_copy_logical_replication_slot',
  'pg_replication_origin_create',
  'pg_replication_origin_drop',
  'pg_log_backend_memory_contexts',
  // functions that run a query given as a string: the parser cannot see what they execute
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'ts_stat',
  'ts_rewrite', // ts_rewrite(tsquery, text) runs its second argument as a query
]);

/**
 * True for a dangerous function, given its name as parsed (`['pg_catalog', 'pg_read_file']`): the
 * last part, in any schema and any case; every dblink_* function counts (dblink extension).
 */
export function isDangerousFunction(nameParts: readonly string[]): boolean {
  const name = (nameParts[nameParts.length - 1] ?? '').toLowerCase();
  return DANGEROUS_FUNCTIONS.has(name) || name === 'dblink' || name.startsWith('dblink_');
}

/** GUC names that set_config() can change and that amount to a role change (SET ROLE / SESSION AUTHORIZATION). */
export const ROLE_SETTINGS: ReadonlySet<string> = new Set(['role', 'session_authorization']);

/**
 * Builtins are pg_catalog's function names, shipped as a text file (generated from a PostgreSQL 15
 * catalog) so the list is data, not 2,600 lines of code. Read once, at import.
 */
const BUILTINS: ReadonlySet<string> = new Set(
  readFileSync(new URL('./builtin-functions.txt', import.meta.url), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#')),
);

/**
 * True when a call is to a pg_catalog builtin: unqualified or qualified with pg_catalog, and a known
 * name, compared exactly as parsed (the parser has already folded unquoted names to lower case, so
 * `"LOWER"(x)` is somebody's function, not lower()). A call qualified with any other schema is never
 * builtin. Works on the parsed parts, never a joined string, so `"pg_catalog.lower"(x)` (one quoted
 * name with a dot in it) is not mistaken for pg_catalog.lower. Known gap: a user function that
 * shadows a builtin name through search_path or an overload is taken for the builtin.
 */
export function isBuiltinFunction(nameParts: readonly string[]): boolean {
  if (nameParts.length === 0 || nameParts.length > 2) return false;
  if (nameParts.length === 2 && nameParts[0] !== 'pg_catalog') return false;
  return BUILTINS.has(nameParts[nameParts.length - 1]!);
}
