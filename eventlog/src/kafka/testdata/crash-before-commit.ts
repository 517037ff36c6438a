/**
 * Child process for kafka.test.ts: joins a group, lets the handler acknowledge the first batch,
 * then dies by SIGKILL in the window between the handler resolving and the offset commit — the
 * crash that at-least-once delivery must survive. Reports the offsets it handled on stdout
 * (one JSON line, written synchronously so it is out before the kill).
 *
 * Env: KAFKA_BROKERS (comma-separated), KAFKA_TOPIC, KAFKA_GROUP.
 */
import { writeSync } from 'node:fs';
import { KafkaEventLog } from '../index.ts';

const brokers = (process.env.KAFKA_BROKERS ?? '').split(',');
const topic = process.env.KAFKA_TOPIC ?? '';
const groupId = process.env.KAFKA_GROUP ?? '';

const log = new KafkaEventLog({ brokers, client_id: 'crash-child', session_timeout_ms: 6000, heartbeat_interval_ms: 1000 });
const consumer = log.consumer(
  { groupId, topics: [topic], fromBeginning: true },
  {
    beforeCommit: async (batch) => {
      writeSync(1, `${JSON.stringify({ handled: batch.records.map((r) => r.offset) })}\n`);
      process.kill(process.pid, 'SIGKILL');
      await new Promise(() => {}); // never reached: the commit after this hook must not happen
    },
  },
);
await consumer.run(async () => {});
