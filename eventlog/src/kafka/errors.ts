/**
 * Stable error codes of the Kafka event log. Retries read only `retriable`; this table is the
 * single source of truth for both the flag and the documentation (a test checks it is complete).
 *
 * For errors that come from kafkajs the table gives the default; `kafkaLogError` takes the
 * actual retriability from kafkajs's own flag (a refused connection is retriable, an
 * authorization failure is not), so callers can trust `error.retriable` either way.
 */
import { LogError } from '../types.ts';

export const KafkaLogErrors = {
  LOG_ERR_KAFKA_CONFIG: {
    retriable: false,
    description: 'The Kafka event log configuration failed validation; every problem is listed in the message.',
  },
  LOG_ERR_KAFKA_SEND: {
    retriable: true,
    description:
      'The broker did not acknowledge a produced batch (after kafkajs retries). retriable follows kafkajs: ' +
      'true for connection/timeout/leader errors, false e.g. for authorization or record-too-large.',
  },
  LOG_ERR_KAFKA_SEND_ABORTED: {
    retriable: true,
    description:
      'Not sent because an earlier batch of the same producer failed while these records were queued ' +
      'behind it; sending them could have put later records of a key before earlier, lost ones.',
  },
  LOG_ERR_KAFKA_CONNECT: {
    retriable: true,
    description: 'Could not connect to the brokers (producer, consumer or admin client).',
  },
  LOG_ERR_KAFKA_ADMIN: {
    retriable: true,
    description: 'An admin operation (createTopics) failed for a reason other than "topic already exists".',
  },
  LOG_ERR_KAFKA_COMMIT: {
    retriable: true,
    description:
      'Committing consumer offsets failed after the handler acknowledged; the batch will be delivered again ' +
      '(at-least-once).',
  },
  LOG_ERR_KAFKA_CONSUMER: {
    retriable: true,
    description: 'The kafkajs consumer crashed or could not join its group.',
  },
  LOG_ERR_KAFKA_INVALID_RECORD: {
    retriable: false,
    description: 'A record is malformed: key not a string, value not a Buffer, or a header value not a string.',
  },
  LOG_ERR_KAFKA_TOO_LARGE: {
    retriable: false,
    description: 'A single record is larger than max_batch_bytes (it could never be sent).',
  },
  LOG_ERR_KAFKA_CLOSED: {
    retriable: false,
    description: 'The event log, producer or consumer was already closed.',
  },
  LOG_ERR_KAFKA_USAGE: {
    retriable: false,
    description: 'The API was used wrongly (e.g. run() called twice on one consumer).',
  },
} as const satisfies Record<string, { retriable: boolean; description: string }>;

export type KafkaLogErrorCode = keyof typeof KafkaLogErrors;

export function kafkaLogError(code: KafkaLogErrorCode, message: string, cause?: unknown): LogError {
  const retriable = cause === undefined ? KafkaLogErrors[code].retriable : kafkaRetriable(cause);
  return new LogError(code, message, retriable, cause === undefined ? undefined : { cause });
}

/**
 * The error kafkajs actually met: it wraps the last error of its own retry loop in
 * KafkaJSNumberOfRetriesExceeded, which says nothing of its own.
 */
export function kafkaCause(err: unknown): unknown {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e instanceof Error && e.name === 'KafkaJSNumberOfRetriesExceeded' && e.cause !== undefined; depth++) {
    e = e.cause;
  }
  return e;
}

/**
 * Whether retrying can help, from kafkajs's error (its original cause: the retry wrapper is never
 * retriable itself). Errors that are not kafkajs errors are programmer errors: not retriable.
 */
export function kafkaRetriable(err: unknown): boolean {
  const e = kafkaCause(err);
  if (!(e instanceof Error)) return false;
  const flag = (e as { retriable?: unknown }).retriable;
  return typeof flag === 'boolean' && e.name.startsWith('KafkaJS') ? flag : false;
}

/** A short, payload-free description of a kafkajs error for messages and logs. */
export function describeKafkaError(err: unknown): string {
  const e = kafkaCause(err);
  if (!(e instanceof Error)) return String(e);
  const type = (e as { type?: unknown }).type;
  return `${e.name}${typeof type === 'string' ? ` ${type}` : ''}: ${e.message}`;
}
