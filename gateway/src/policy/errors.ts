/**
 * Stable error codes of the policy engine. Same shape as gateway/src/errors.ts (retries read only
 * `retriable`); kept in this folder so the policy engine owns its rows. docs/errors.md lists each
 * one under the Gateway table (errors.test.ts checks that).
 */

export interface PolicyErrorInfo {
  retriable: boolean;
  description: string;
  /** SQLSTATE sent to a PostgreSQL client, where the error reaches one. */
  sqlstate?: string;
}

export const POLICY_ERRORS = {
  GW_ERR_POLICY_READ: {
    retriable: true,
    description:
      'The policy file could not be read (missing, unreadable). Retriable: an editor that replaces the file by rename leaves it briefly absent; hot reload keeps the running policy and tries again on the next change.',
  },
  GW_ERR_POLICY_SYNTAX: {
    retriable: false,
    description: 'The policy file is not valid YAML (or has duplicate keys); every problem is listed with its line and column.',
  },
  GW_ERR_POLICY_INVALID: {
    retriable: false,
    description:
      'The policy failed validation: unknown key, wrong type, bad glob, unknown time zone, unknown feature, … Every problem is listed with its YAML path; on hot reload the running policy is kept.',
  },
  GW_ERR_POLICY_BLOCKED: {
    retriable: false,
    sqlstate: '42501',
    description: 'A statement was blocked by a policy rule (or by `defaults.action: block`); the message names the rule. The rule may name another SQLSTATE.',
  },
  GW_ERR_POLICY_UNPARSABLE: {
    retriable: false,
    sqlstate: '42501',
    description: 'A statement the SQL parser rejected was blocked on a target governed by a policy (`defaults.unparsable: block`).',
  },
} as const satisfies Record<string, PolicyErrorInfo>;

export type PolicyErrorCode = keyof typeof POLICY_ERRORS;

/** One problem in a policy file: where (YAML path, line/column when known) and what. */
export interface PolicyProblem {
  /** e.g. `rules[2].match.time.timezone`; '' for the whole document. */
  path: string;
  line?: number;
  col?: number;
  message: string;
}

export function formatProblem(p: PolicyProblem): string {
  const where = p.path === '' ? '(document)' : p.path;
  return p.line === undefined ? `${where}: ${p.message}` : `${where} (line ${p.line}, col ${p.col}): ${p.message}`;
}

/** Every problem at once, so an operator fixes a file in one pass. */
export class PolicyError extends Error {
  readonly retriable: boolean;
  constructor(
    readonly code: PolicyErrorCode,
    /** Names the file (or 'policy'), never its contents beyond the offending key paths. */
    readonly source: string,
    readonly problems: readonly PolicyProblem[],
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${source}: ${problems.length} problem(s)\n${problems.map((p) => `  - ${formatProblem(p)}`).join('\n')}`, options);
    this.name = 'PolicyError';
    this.retriable = POLICY_ERRORS[code].retriable;
  }
}

export function isPolicyError(err: unknown, code?: PolicyErrorCode): err is PolicyError {
  return err instanceof PolicyError && (code === undefined || err.code === code);
}
