/**
 * The only file that talks to libpg-query (PostgreSQL's own parser compiled to WASM). The module
 * loads asynchronously once (`initSqlParser`), after which `parseSync` runs on the hot path without
 * a promise per statement. Everything the parser can throw is turned into a value here, so callers
 * never see an exception for hostile input.
 */
import { loadModule, parseSync } from 'libpg-query';
import type { SqlErrorCode } from './errors.ts';

/** One raw statement of a parse: its top-level node and its byte span in the UTF-8 input. */
export interface RawStatement {
  /** `{ SelectStmt: {...} }`: a single key, the node type. */
  stmt: Record<string, unknown>;
  /** Byte offset of the statement's first token (0 when absent). */
  stmt_location?: number;
  /** Byte length up to (not including) the terminating ';'; 0/absent means "to the end". */
  stmt_len?: number;
}

export type ParseOutcome =
  | { ok: true; stmts: RawStatement[] }
  | {
      ok: false;
      code: SqlErrorCode;
      message: string;
      /** 0-based position in code points: PostgreSQL converts its byte offset to characters for errors. */
      charPosition?: number;
    };

let ready = false;
/** Set when the parser failed in a way that leaves its WASM state suspect; then every parse fails closed. */
let broken: string | undefined;

/** Loads the WASM parser. Call once at startup, before the first analysis; calling again is harmless. */
export async function initSqlParser(): Promise<void> {
  if (ready) return;
  await loadModule();
  ready = true;
}

export function isSqlParserReady(): boolean {
  return ready;
}

/** Canary used after an unexpected failure to check that the parser still gives right answers. */
const CANARY = 'select a from t where b = 1';
const CANARY_TREE =
  '{"stmts":[{"stmt":{"SelectStmt":{"targetList":[{"ResTarget":{"val":{"ColumnRef":{"fields":[{"String":{"sval":"a"}}],"location":7}},"location":7}}],"fromClause":[{"RangeVar":{"relname":"t","inh":true,"relpersistence":"p","location":14}}],"whereClause":{"A_Expr":{"kind":"AEXPR_OP","name":[{"String":{"sval":"="}}],"lexpr":{"ColumnRef":{"fields":[{"String":{"sval":"b"}}],"location":22}},"rexpr":{"A_Const":{"ival":{"ival":1},"location":26}},"location":24}},"limitOption":"LIMIT_OPTION_DEFAULT","op":"SETOP_NONE"}}}]}';

/**
 * Parses `sql` (already checked: non-empty, well-formed, no NUL) with the real parser.
 * Never throws except GW_ERR_SQL_PARSER_NOT_READY's programmer error, which the caller raises.
 */
export function parseStatements(sql: string): ParseOutcome {
  if (broken !== undefined) return { ok: false, code: 'GW_ERR_SQL_PARSER_FAILED', message: broken };
  try {
    const tree = parseSync(sql) as unknown as { stmts?: RawStatement[] };
    return { ok: true, stmts: tree.stmts ?? [] };
  } catch (err) {
    return classifyFailure(err);
  }
}

function classifyFailure(err: unknown): ParseOutcome {
  const message = err instanceof Error ? err.message : String(err);
  const details = (err as { sqlDetails?: { cursorPosition?: number } } | null)?.sqlDetails;
  if (details !== undefined) {
    // The parser's own error (libpg-query's SqlError). Bison's "memory exhausted" and the
    // "stack depth limit exceeded" check are PostgreSQL's answers to excessive nesting.
    const tooComplex = /memory exhausted|stack depth limit exceeded/i.test(message);
    return {
      ok: false,
      code: tooComplex ? 'GW_ERR_SQL_TOO_COMPLEX' : 'GW_ERR_SQL_UNPARSABLE',
      message,
      charPosition: typeof details.cursorPosition === 'number' ? details.cursorPosition : undefined,
    };
  }
  if (err instanceof RangeError) {
    // Deep trees overflow the WASM or the JavaScript stack (JSON.parse of the tree). V8 unwinds
    // cleanly; the canary below proves it.
    checkHealth();
    return { ok: false, code: 'GW_ERR_SQL_TOO_COMPLEX', message: `statement too deeply nested to analyse (${message})` };
  }
  // A WASM trap or anything else unexpected: report this statement, then make sure the parser
  // still works, or refuse every later statement (fail closed) rather than trust a corrupt heap.
  checkHealth();
  return { ok: false, code: 'GW_ERR_SQL_PARSER_FAILED', message: `parser failure: ${message}` };
}

function checkHealth(): void {
  try {
    const tree = parseSync(CANARY) as unknown as { stmts?: unknown };
    if (JSON.stringify({ stmts: tree.stmts }) === CANARY_TREE) return;
    broken = 'the SQL parser returned a wrong tree after a failure; every statement is refused until restart';
  } catch {
    broken = 'the SQL parser stopped working after a failure; every statement is refused until restart';
  }
}

/** For tests: whether the parser has been declared broken. */
export function sqlParserBroken(): string | undefined {
  return broken;
}
