/**
 * Statement analysis with PostgreSQL's own parser: what each statement of a simple query (or the
 * one statement of an extended-protocol Parse) is, and which policy features it has.
 *
 *   await initSqlParser();                 // once, at startup
 *   const analyser = createSqlAnalyser();  // one per process: the cache is shared by all sessions
 *   analyser.analyse(queryText);           // hot path: cached by text, parsed once
 *
 * Statements are split with the parser's own statement locations, so a ';' inside a string, a
 * dollar-quoted body, a quoted identifier or a comment never splits. The analyser never throws for
 * input: whatever it cannot analyse comes back as one 'unparsable' analysis with a GW_ERR_SQL_* code,
 * and the policy decides (block on governed targets, by default).
 */
import type { StatementAnalysis } from './features.ts';
import { SQL_ERRORS, type SqlErrorCode } from './errors.ts';
import { parseStatements, isSqlParserReady, type RawStatement } from './parser.ts';
import { deriveStatement } from './derive.ts';
import { LruCache, type LruStats } from './cache.ts';
import { normalizeNumerics } from './normalize.ts';

export { initSqlParser } from './parser.ts';

/** An analysis as this module returns it: frozen (it may be shared through the cache). */
export interface SqlAnalysis extends StatementAnalysis {
  /** Why it is 'unparsable': a key of SQL_ERRORS. */
  code?: SqlErrorCode;
  /** 1-based character (code point) position of the parser error in `text`: PostgreSQL's ErrorResponse 'P' field. */
  position?: number;
}

export interface AnalyseOptions {
  /** Longer statement texts (UTF-8 bytes) are not parsed: GW_ERR_SQL_TOO_LARGE. Parsing is synchronous. */
  max_statement_bytes?: number;
}

/** A 564 KiB bulk INSERT takes ~150 ms to analyse here (bench.ts), so 1 MiB stalls the event loop ~0.3 s: the ceiling, not a target. */
export const DEFAULT_MAX_STATEMENT_BYTES = 1024 * 1024;

const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** An unpaired surrogate cannot be encoded as UTF-8, so the parser would see something else. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Analyses a simple-query string: one analysis per statement, [] when there is none (empty query). */
export function analyse(sqlText: string, options: AnalyseOptions = {}): readonly SqlAnalysis[] {
  if (!isSqlParserReady()) throw notReady();
  const limit = options.max_statement_bytes ?? DEFAULT_MAX_STATEMENT_BYTES;
  // A JS string's UTF-8 length is at most 3 bytes per code unit, so most texts skip the count.
  const bytes = sqlText.length * 3 <= limit ? 0 : Buffer.byteLength(sqlText, 'utf8');
  if (bytes > limit) {
    return [failed(sqlText, 'GW_ERR_SQL_TOO_LARGE', `statement of ${bytes} bytes exceeds the ${limit}-byte analysis limit`)];
  }
  if (sqlText.includes('\0')) {
    // The parser reads a C string: it would stop at the NUL and analyse a prefix of the statement.
    return [failed(sqlText, 'GW_ERR_SQL_INVALID_ENCODING', 'statement contains a NUL character')];
  }
  if (LONE_SURROGATE.test(sqlText)) {
    return [failed(sqlText, 'GW_ERR_SQL_INVALID_ENCODING', 'statement is not valid UTF-8 (unpaired surrogate)')];
  }
  if (sqlText.trim() === '') return Object.freeze([]);

  const outcome = parseStatements(sqlText);
  if (!outcome.ok) {
    const position = outcome.charPosition === undefined ? undefined : outcome.charPosition + 1;
    return [failed(sqlText, outcome.code, outcome.message, position)];
  }
  const pieces = splitStatements(sqlText, outcome.stmts);
  const out: SqlAnalysis[] = [];
  for (let i = 0; i < outcome.stmts.length; i++) {
    const d = deriveStatement(outcome.stmts[i]!.stmt);
    out.push(deepFreeze({ text: pieces[i]!, kind: d.kind, features: d.features, relations: d.relations, functions: d.functions }));
  }
  return Object.freeze(out);
}

/** Analyses UTF-8 bytes as received on the wire; invalid UTF-8 is an 'unparsable' analysis. */
export function analyseBytes(sqlBytes: Uint8Array, options: AnalyseOptions = {}): readonly SqlAnalysis[] {
  const limit = options.max_statement_bytes ?? DEFAULT_MAX_STATEMENT_BYTES;
  if (sqlBytes.length > limit) {
    // Decoding to report it would cost as much as the limit is there to avoid.
    return [failed('', 'GW_ERR_SQL_TOO_LARGE', `statement of ${sqlBytes.length} bytes exceeds the ${limit}-byte analysis limit`)];
  }
  let text: string;
  try {
    text = UTF8.decode(sqlBytes);
  } catch {
    return [failed(Buffer.from(sqlBytes).toString('utf8'), 'GW_ERR_SQL_INVALID_ENCODING', 'statement is not valid UTF-8')];
  }
  return analyse(text, options);
}

/**
 * The one statement of an extended-protocol Parse. No statement is PostgreSQL's empty query (kind
 * 'EmptyQuery', no features); more than one is refused by PostgreSQL, so it is 'unparsable' here.
 */
export function analyseOne(sqlText: string, options: AnalyseOptions = {}): SqlAnalysis {
  return one(sqlText, analyse(sqlText, options));
}

function one(sqlText: string, all: readonly SqlAnalysis[]): SqlAnalysis {
  if (all.length === 1) return all[0]!;
  if (all.length === 0) return deepFreeze({ text: sqlText, kind: 'EmptyQuery', features: [], relations: [], functions: [] });
  const a = failed(sqlText, 'GW_ERR_SQL_MULTIPLE_STATEMENTS', `cannot insert multiple commands into a prepared statement (${all.length} statements)`);
  // Still say what was inside, for the audit trail.
  return deepFreeze({ ...a, relations: union(all.map((x) => x.relations)), functions: union(all.map((x) => x.functions)) });
}

export interface SqlAnalyserOptions extends AnalyseOptions {
  /** Distinct statement texts kept (default 10,000). */
  cache_max_entries?: number;
  /** Approximate bytes kept, keys and analyses together (default 32 MiB). */
  cache_max_bytes?: number;
  /** Texts longer than this (JS bytes, 2 per code unit) are analysed every time, never cached (default 256 KiB). */
  cache_max_key_bytes?: number;
}

export interface SqlAnalyser {
  analyse(sqlText: string): readonly SqlAnalysis[];
  analyseOne(sqlText: string): SqlAnalysis;
  stats(): LruStats;
}

/** A cached analyser: each distinct statement text is parsed once while it stays in the cache. */
export function createSqlAnalyser(options: SqlAnalyserOptions = {}): SqlAnalyser {
  const cache = new LruCache<readonly SqlAnalysis[]>({
    max_entries: options.cache_max_entries ?? 10_000,
    max_bytes: options.cache_max_bytes ?? 32 * 1024 * 1024,
    max_key_bytes: options.cache_max_key_bytes ?? 256 * 1024,
    sizeOf: analysesSize,
  });
  const compute = (text: string) => analyse(text, options);
  // Keyed by the text with numeric literals normalised (normalize.ts): statements that differ only
  // in inlined numbers share one parse. The shared analyses are mapped back onto this text by
  // position (normalisation keeps every length), so `text` is always what the client sent.
  const lookup = (sqlText: string): readonly SqlAnalysis[] => {
    const key = normalizeNumerics(sqlText);
    if (key === undefined) return cache.getOrCompute(sqlText, compute);
    const shared = cache.getOrCompute(key, compute);
    // Errors quote the text near them: this text's own analysis, cached by its exact text.
    if (shared.some((a) => a.kind === 'unparsable')) return cache.getOrCompute(sqlText, compute);
    return remap(sqlText, key, shared) ?? compute(sqlText);
  };
  return {
    analyse: lookup,
    analyseOne: (sqlText) => one(sqlText, lookup(sqlText)),
    stats: () => cache.stats(),
  };
}

/** `shared` (analyses of `key`) with each `text` taken from `original` at the same position. */
function remap(original: string, key: string, shared: readonly SqlAnalysis[]): readonly SqlAnalysis[] | undefined {
  if (shared.length === 1 && shared[0]!.text === key) return [deepFreeze({ ...shared[0]!, text: original })];
  let cursor = 0;
  const out: SqlAnalysis[] = [];
  for (const a of shared) {
    const at = key.indexOf(a.text, cursor);
    if (at < 0) return undefined;
    cursor = at + a.text.length;
    out.push(Object.freeze({ ...a, text: original.slice(at, cursor) }));
  }
  return out;
}

/** Rough bytes of analyses: each text (2 bytes per code unit), names, and fixed object overhead. */
function analysesSize(all: readonly SqlAnalysis[]): number {
  let n = 64;
  for (const a of all) {
    n += 160 + a.text.length * 2 + (a.error?.length ?? 0) * 2 + a.features.length * 8;
    for (const r of a.relations) n += 32 + r.length * 2;
    for (const f of a.functions) n += 32 + f.length * 2;
  }
  return n;
}

/**
 * Cuts the text at the parser's statement boundaries. Locations are byte offsets into the UTF-8
 * text; for ASCII text they are also string indexes, so only non-ASCII text is encoded.
 */
function splitStatements(sqlText: string, stmts: RawStatement[]): string[] {
  const ascii = !/[^\x00-\x7f]/.test(sqlText);
  const buf = ascii ? undefined : Buffer.from(sqlText, 'utf8');
  const end = buf === undefined ? sqlText.length : buf.length;
  return stmts.map((s) => {
    const from = s.stmt_location ?? 0;
    const to = s.stmt_len ? from + s.stmt_len : end;
    const piece = buf === undefined ? sqlText.slice(from, to) : buf.subarray(from, to).toString('utf8');
    return piece.trim();
  });
}

function failed(text: string, code: SqlErrorCode, error: string, position?: number): SqlAnalysis {
  const a: SqlAnalysis = { text, kind: 'unparsable', features: ['unparsable'], relations: [], functions: [], error, code };
  if (position !== undefined) a.position = position;
  return deepFreeze(a);
}

function deepFreeze(a: SqlAnalysis): SqlAnalysis {
  Object.freeze(a.features);
  Object.freeze(a.relations);
  Object.freeze(a.functions);
  return Object.freeze(a);
}

function union(lists: ReadonlyArray<readonly string[]>): string[] {
  return [...new Set(lists.flat())];
}

function notReady(): Error {
  const err = new Error(`GW_ERR_SQL_PARSER_NOT_READY: ${SQL_ERRORS.GW_ERR_SQL_PARSER_NOT_READY.description}`);
  (err as Error & { code: string }).code = 'GW_ERR_SQL_PARSER_NOT_READY';
  return err;
}

// Re-exported so callers need one import for the whole analyser.
export type { StatementAnalysis, StatementFeature } from './features.ts';
export type { LruStats } from './cache.ts';
