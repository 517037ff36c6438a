/**
 * Stable error codes of the SQL statement analyser. Same shape as gateway/src/errors.ts (retries read
 * only `retriable`); kept in this folder so the analyser owns its rows. docs/errors.md lists each one
 * under the Gateway table. Except GW_ERR_SQL_PARSER_NOT_READY (a programmer error, thrown), these are
 * not thrown: they are the `code` of an 'unparsable' analysis, and the policy engine decides whether
 * the statement is blocked (with the SQLSTATE below) or forwarded.
 */

export interface SqlErrorInfo {
  retriable: boolean;
  description: string;
  /** SQLSTATE sent to a PostgreSQL client when a statement is blocked for this reason. */
  sqlstate?: string;
}

export const SQL_ERRORS = {
  GW_ERR_SQL_PARSER_NOT_READY: {
    retriable: false,
    description: 'The SQL analyser was called before `initSqlParser()` finished loading the parser (a programmer error).',
  },
  GW_ERR_SQL_UNPARSABLE: {
    retriable: false,
    sqlstate: '42601',
    description: "The PostgreSQL parser rejected the statement text; the analysis carries the parser's message and position.",
  },
  GW_ERR_SQL_TOO_LARGE: {
    retriable: false,
    sqlstate: '54000',
    description: 'The statement text is longer than max_statement_bytes; it was not parsed (parsing is synchronous and would stall every session).',
  },
  GW_ERR_SQL_TOO_COMPLEX: {
    retriable: false,
    sqlstate: '54001',
    description: "The statement nests too deeply for the parser (its stack or the JavaScript stack ran out); it was not analysed.",
  },
  GW_ERR_SQL_INVALID_ENCODING: {
    retriable: false,
    sqlstate: '22021',
    description: 'The statement text is not valid UTF-8 (invalid bytes, lone surrogates) or contains a NUL character.',
  },
  GW_ERR_SQL_PARSER_FAILED: {
    retriable: false,
    sqlstate: 'XX000',
    description: 'The parser failed internally (not a syntax error). If a canary parse then fails too, every later statement gets this code until restart (fail closed).',
  },
  GW_ERR_SQL_MULTIPLE_STATEMENTS: {
    retriable: false,
    sqlstate: '42601',
    description: 'An extended-protocol Parse carried more than one statement (PostgreSQL: cannot insert multiple commands into a prepared statement).',
  },
} as const satisfies Record<string, SqlErrorInfo>;

export type SqlErrorCode = keyof typeof SQL_ERRORS;
