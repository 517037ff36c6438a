/**
 * @vigil/eventlog — one interface, two implementations, chosen by configuration:
 *   local  the embedded mode's durable segment log (eventlog/src/local/)
 *   kafka  the distributed mode (eventlog/src/kafka/), optionally with a local spool in front of
 *          the gateway's producer so events keep becoming durable while Kafka is unreachable
 */
import type { EventLog, Producer } from './types.ts';
import { LocalEventLog } from './local/index.ts';
import type { LocalEventLogConfig } from './local/config.ts';
import { KafkaEventLog } from './kafka/index.ts';
import type { KafkaEventLogConfig } from './kafka/config.ts';

export * from './types.ts';

export type EventLogConfig =
  | { kind: 'local'; local: LocalEventLogConfig }
  | { kind: 'kafka'; kafka: KafkaEventLogConfig; spool?: LocalEventLogConfig };

export async function createEventLog(config: EventLogConfig): Promise<EventLog> {
  if (config.kind === 'local') return LocalEventLog.open(config.local);
  return new KafkaEventLog(config.kafka);
}

/**
 * The producer the gateway writes through: the log's own, or — for Kafka with a spool configured —
 * a SpoolingProducer that diverts to the local spool while Kafka fails with retriable errors and
 * drains it, in order, once Kafka is back.
 */
export async function createGatewayProducer(config: EventLogConfig, log: EventLog): Promise<Producer> {
  if (config.kind === 'kafka' && config.spool) {
    const { openSpoolingProducer } = await import('./spool/index.ts');
    return openSpoolingProducer(log.producer(), config.spool);
  }
  return log.producer();
}
