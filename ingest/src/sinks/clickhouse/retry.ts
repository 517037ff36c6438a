/**
 * Store error classification and bounded retry. Retries read only `retriable` of the classified
 * IngestError: network and transient ClickHouse errors are retried in place with exponential
 * backoff until `retry_max_ms`; schema/data errors and programming errors are thrown at once.
 */
import { IngestError } from '../../errors.ts';

/**
 * ClickHouse error codes that retrying cannot fix (the request itself is wrong). Everything else
 * ClickHouse reports (TOO_MANY_PARTS, MEMORY_LIMIT_EXCEEDED, TIMEOUT_EXCEEDED, TABLE_IS_READ_ONLY,
 * KEEPER_EXCEPTION, …) is treated as transient and retried, bounded by retry_max_ms.
 */
const NON_RETRIABLE_CH_CODES = new Set([
  1, // UNSUPPORTED_METHOD
  6, // CANNOT_PARSE_TEXT
  16, // NO_SUCH_COLUMN_IN_TABLE
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  36, // BAD_ARGUMENTS
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  43, // ILLEGAL_TYPE_OF_ARGUMENT
  44, // ILLEGAL_COLUMN
  47, // UNKNOWN_IDENTIFIER
  53, // TYPE_MISMATCH
  60, // UNKNOWN_TABLE
  62, // SYNTAX_ERROR
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  81, // UNKNOWN_DATABASE
  117, // INCORRECT_DATA
  192, // UNKNOWN_USER
  193, // WRONG_PASSWORD
  194, // REQUIRED_PASSWORD
  497, // ACCESS_DENIED
  516, // AUTHENTICATION_FAILED
]);

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENOTFOUND', 'EAI_AGAIN', 'ESOCKETTIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT',
]);

/** Map any error from a store call to an IngestError with the right `retriable` flag. */
export function classifyStoreError(err: unknown, what: string): IngestError {
  if (err instanceof IngestError) return err;
  const e = err as { name?: string; code?: unknown; type?: unknown; message?: unknown; retriable?: unknown };
  const message = typeof e?.message === 'string' ? e.message.split('\n')[0]!.slice(0, 300) : String(err);
  const opts = { cause: err };
  if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError) {
    return new IngestError('ING_ERR_INTERNAL', `${what}: ${e.name}: ${message}`, opts);
  }
  if (typeof e?.code === 'string' && NETWORK_CODES.has(e.code)) {
    return new IngestError('ING_ERR_STORE_UNAVAILABLE', `${what}: ${e.code}`, opts);
  }
  // @clickhouse/client's ClickHouseError: numeric code as string, symbolic `type`.
  const chCode = typeof e?.code === 'string' && /^\d+$/.test(e.code) ? Number(e.code) : undefined;
  if (chCode !== undefined) {
    // Code and type only: ClickHouse parse errors quote the offending row (statements, params).
    const label = `${what}: ClickHouse ${chCode}${typeof e.type === 'string' ? ` ${e.type}` : ''}`;
    return NON_RETRIABLE_CH_CODES.has(chCode)
      ? new IngestError('ING_ERR_STORE_SCHEMA', label, opts)
      : new IngestError('ING_ERR_STORE_TRANSIENT', label, opts);
  }
  if (typeof e?.retriable === 'boolean') {
    return new IngestError(e.retriable ? 'ING_ERR_STORE_TRANSIENT' : 'ING_ERR_STORE_SCHEMA', `${what}: ${message}`, opts);
  }
  if (/timeout|socket hang up|ECONN|network/i.test(message)) {
    return new IngestError('ING_ERR_STORE_UNAVAILABLE', `${what}: ${message}`, opts);
  }
  // Unknown failures of the store client: retry in place, bounded by retry_max_ms.
  return new IngestError('ING_ERR_STORE_TRANSIENT', `${what}: ${message}`, opts);
}

export interface RetryOptions {
  retry_backoff_ms: number;
  retry_max_ms: number;
  /** Called before each wait (for logs and counters). */
  onRetry?: (error: IngestError, attempt: number, delayMs: number) => void;
  /** True when the caller is stopping: give up waiting. */
  stopping?: () => boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Run `fn` until it succeeds, a non-retriable error occurs, or retry_max_ms is exceeded. */
export async function withRetry<T>(what: string, fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (raw) {
      const error = classifyStoreError(raw, what);
      if (!error.retriable) throw error;
      const base = Math.min(options.retry_backoff_ms * 2 ** (attempt - 1), 10_000);
      const delay = Math.round(base / 2 + (Math.random() * base) / 2);
      if (Date.now() - started + delay > options.retry_max_ms) {
        throw new IngestError('ING_ERR_RETRY_EXHAUSTED', `${what}: gave up after ${attempt} attempts (${error.code}: ${error.message})`, { cause: error });
      }
      if (options.stopping?.()) throw new IngestError('ING_ERR_STOPPED', `${what}: stopping during retry`, { cause: error });
      options.onRetry?.(error, attempt, delay);
      await sleep(delay);
    }
  }
}
