/**
 * Stable error codes of the local event log. Retries read only `retriable`; the table below is the
 * single source of truth for both the flag and the documentation (a test checks it is complete).
 */
import { LogError } from '../types.ts';

export const LocalLogErrors = {
  LOG_ERR_LOCKED: {
    retriable: false,
    description: 'Another process (or another LocalEventLog in this process) holds the log directory lock.',
  },
  LOG_ERR_FULL: {
    retriable: false,
    description: "The log reached max_bytes and when_full is 'fail_closed'; the send was refused.",
  },
  LOG_ERR_TOO_LARGE: {
    retriable: false,
    description: 'A record exceeds max_record_bytes, or one send exceeds what max_bytes can ever hold.',
  },
  LOG_ERR_CORRUPT: {
    retriable: false,
    description: 'A record failed its CRC or framing check where the log is supposed to be intact.',
  },
  LOG_ERR_IO: {
    retriable: false,
    description: 'A write, fsync or read failed. After a failed fsync the log refuses further writes (reopen it).',
  },
  LOG_ERR_CLOSED: {
    retriable: false,
    description: 'The log, producer or consumer was already closed.',
  },
  LOG_ERR_INVALID_TOPIC: {
    retriable: false,
    description: 'Topic name is not [A-Za-z0-9._-]{1,200} (it becomes a directory name).',
  },
  LOG_ERR_UNKNOWN_TOPIC: {
    retriable: false,
    description: 'The topic does not exist; call ensureTopics() first.',
  },
  LOG_ERR_INVALID_RECORD: {
    retriable: false,
    description: 'A record is malformed (value not a Buffer, key or header name longer than 65535 bytes).',
  },
  LOG_ERR_READ_ONLY: {
    retriable: false,
    description: 'The log was opened with read_only: true and cannot produce.',
  },
  LOG_ERR_GROUP_BUSY: {
    retriable: true,
    description: 'A consumer of this group is already running in this process (one active member per group).',
  },
  LOG_ERR_CONFIG: {
    retriable: false,
    description: 'The configuration failed validation; every problem is listed in the message.',
  },
} as const satisfies Record<string, { retriable: boolean; description: string }>;

export type LocalLogErrorCode = keyof typeof LocalLogErrors;

export function logError(code: LocalLogErrorCode, message: string, cause?: unknown): LogError {
  return new LogError(code, message, LocalLogErrors[code].retriable, cause === undefined ? undefined : { cause });
}

export function isLogError(err: unknown, code?: LocalLogErrorCode): err is LogError {
  return err instanceof LogError && (code === undefined || err.code === code);
}
