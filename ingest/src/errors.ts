/**
 * Stable ingest error codes. Retries read only `retriable`; this table is the single source of
 * truth for the flag and the documentation (`docs/errors.md`, checked by errors.test.ts).
 * Messages never carry statements, parameters or frame bytes.
 */
export const IngestErrors = {
  ING_ERR_CONFIG: {
    retriable: false,
    description: 'The ingest configuration failed validation; every problem is listed in the message.',
  },
  ING_ERR_RECORD_INVALID: {
    retriable: false,
    description:
      'A log record is not a decodable chained event (bad magic, truncated header, …). It is logged with topic/partition/offset, counted and skipped: one corrupt record must not stall its partition. The bytes stay in the log.',
  },
  ING_ERR_DECODE: {
    retriable: false,
    description:
      "A session's protocol messages could not be decoded (malformed or truncated message). That session's decoder state is reset (it resynchronises at the next ReadyForQuery); other sessions and the batch carry on.",
  },
  ING_ERR_SEQ_GAP: {
    retriable: false,
    description:
      "A session's events arrived with a gap or out of order (seq not previous + 1). The session's decoder state is reset; rows are still written (they are keyed by seq).",
  },
  ING_ERR_STORE_UNAVAILABLE: {
    retriable: true,
    description: 'ClickHouse could not be reached (connection refused/reset, timeout, socket error). Retried in place with backoff.',
  },
  ING_ERR_STORE_TRANSIENT: {
    retriable: true,
    description: 'ClickHouse rejected a request for a reason that can pass (overload, too many parts, memory limit, read-only replica, …). Retried in place with backoff.',
  },
  ING_ERR_STORE_SCHEMA: {
    retriable: false,
    description:
      'ClickHouse rejected a request as invalid (unknown table or column, type mismatch, unparsable row, syntax, authentication). Not retried: the handler rejects, the batch is redelivered by the log and the error is counted until the schema or configuration is fixed.',
  },
  ING_ERR_RETRY_EXHAUSTED: {
    retriable: true,
    description:
      'A retriable store error persisted past retry_max_ms. The handler rejects so the log redelivers the batch (its offset was not committed).',
  },
  ING_ERR_INTERNAL: {
    retriable: false,
    description: 'A programming error (TypeError, RangeError, …) while processing a batch. Not retried in place; the batch is redelivered.',
  },
  ING_ERR_SIEM_DELIVERY: {
    retriable: true,
    description:
      'A SIEM sink (webhook, syslog, HEC) did not acknowledge a batch of OCSF records. Retried in place with backoff for retry_max_ms, then the batch is redelivered from the sink cursor; nothing is skipped.',
  },
  ING_ERR_STOPPED: {
    retriable: true,
    description: 'Ingest is stopping; the batch was not processed and will be delivered again on the next start.',
  },
  ING_ERR_MASK_POLICY: {
    retriable: false,
    description:
      'The policy file for masking at rest (ingest.masking.policy_file) is unreadable or invalid. At start ingest refuses to run (it would store what the policy masks); on a hot reload the policy in force stays and the problems are logged.',
  },
  ING_ERR_MASK_POLICY_MISSING: {
    retriable: false,
    description:
      'A gateway announced a policy (policy.loaded) but this ingest has no ingest.masking.policy_file and without_policy is store. Logged once; from then on every constant and parameter is masked at rest (without_policy: redact), since ingest cannot know what the policy masks.',
  },
} as const satisfies Record<string, { retriable: boolean; description: string }>;

export type IngestErrorCode = keyof typeof IngestErrors;

export class IngestError extends Error {
  readonly retriable: boolean;
  constructor(
    readonly code: IngestErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'IngestError';
    this.retriable = IngestErrors[code].retriable;
  }
}

/** Minimal structured logger (pino-compatible: `logger.warn({ ...fields }, 'message')`). */
export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
