/**
 * Where kafkajs's own logging goes. kafkajs log entries can carry request details (offsets,
 * topic metadata, error stacks); we keep WARN and above and copy only a whitelist of fields, so
 * record values, headers and credentials can never reach a log line.
 */
import { logLevel, type logCreator } from 'kafkajs';

/** The subset of a pino-style logger we need (pino instances satisfy it). */
export interface KafkaLogSink {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** JSON lines on stderr; used when the caller does not pass its own logger. */
export const stderrLogSink: KafkaLogSink = {
  warn: (fields, message) => writeLine('warn', fields, message),
  error: (fields, message) => writeLine('error', fields, message),
};

function writeLine(level: string, fields: Record<string, unknown>, message: string): void {
  process.stderr.write(`${JSON.stringify({ level, time: Date.now(), component: 'eventlog.kafka', msg: message, ...fields })}\n`);
}

/** kafkajs fields that describe where something happened, never what was in it. */
const SAFE_FIELDS = ['groupId', 'memberId', 'topic', 'partition', 'broker', 'clientId', 'retryCount', 'retryTime', 'nodeId'];

export function kafkajsLogCreator(sink: KafkaLogSink): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      if (level > logLevel.WARN || level === logLevel.NOTHING) return;
      const fields: Record<string, unknown> = { namespace };
      for (const key of SAFE_FIELDS) {
        const v = (log as Record<string, unknown>)[key];
        if (typeof v === 'string' || typeof v === 'number') fields[key] = v;
      }
      // `error` is a message string in kafkajs entries (or an Error for user-code failures).
      const err = (log as Record<string, unknown>).error;
      if (typeof err === 'string') fields.error = err;
      else if (err instanceof Error) fields.error = err.name;
      const message = typeof log.message === 'string' ? log.message : 'kafkajs';
      if (level === logLevel.ERROR) sink.error(fields, message);
      else sink.warn(fields, message);
    };
}
