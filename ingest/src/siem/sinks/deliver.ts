/**
 * Delivery of OCSF records to one SIEM sink with end-to-end acknowledgement: each sink is its own
 * consumer group on `vigil.ocsf.v1` (`vigil-siem-<name>`), so its cursor is the group's committed
 * offset, and the log commits a batch only after the sink's receiver acknowledged it (HTTP 2xx /
 * HEC code 0 / TLS-written and flushed syslog frames). A failure is retried in place with backoff for
 * retry_max_ms, then handed back to the log, which redelivers it: nothing is skipped, and a receiver
 * that took a batch but whose answer was lost sees it again with the same event ids (bounded duplicates).
 */
import { readFileSync } from 'node:fs';
import { Topics, type Consumer, type EventLog } from '@vigil/eventlog/types';
import type { Logger } from '../../errors.ts';
import type { SecretRef, SinkConfig } from '../config.ts';
import type { OcsfRecord } from '../ocsf/map.ts';
import { WebhookSink } from './webhook.ts';
import { SyslogSink } from './syslog.ts';
import { HecSink } from './hec.ts';

export interface SiemSink {
  send(records: OcsfRecord[]): Promise<void>;
  close(): Promise<void>;
}

export class SinkDeliveryError extends Error {
  constructor(message: string, readonly retriable = true) {
    super(message);
    this.name = 'SinkDeliveryError';
  }
}

export function resolveSecret(ref: SecretRef): string {
  if ('env' in ref) {
    const v = process.env[ref.env];
    if (!v) throw new Error(`secret: environment variable ${ref.env} is not set`);
    return v;
  }
  return readFileSync(ref.file, 'utf8').trim();
}

export function createSink(config: SinkConfig, version: string): SiemSink {
  const ca = config.ca_file ? readFileSync(config.ca_file) : undefined;
  switch (config.kind) {
    case 'webhook':
      return new WebhookSink(config.url, resolveSecret(config.hmac_secret), config.timeout_ms, ca);
    case 'hec':
      return new HecSink(config.url, resolveSecret(config.token), config.sourcetype, config.index, config.timeout_ms, ca);
    case 'syslog':
      return new SyslogSink(config.host, config.port, config.tls, config.app_name, version, config.timeout_ms, ca);
  }
}

export interface DeliveryStats {
  batches: number;
  delivered: number;
  failures: number;
  invalid: number;
}

export interface SinkRunner {
  readonly stats: DeliveryStats;
  stop(): Promise<void>;
}

/** Consume `vigil.ocsf.v1` for one sink until stopped. */
export async function runSink(log: EventLog, config: SinkConfig, sink: SiemSink, logger: Logger): Promise<SinkRunner> {
  const stats: DeliveryStats = { batches: 0, delivered: 0, failures: 0, invalid: 0 };
  let stopping = false;
  await log.ensureTopics([Topics.ocsf]);
  const consumer: Consumer = log.consumer({ groupId: `vigil-siem-${config.name}`, topics: [Topics.ocsf], fromBeginning: true, maxBatchRecords: config.max_batch_events });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await consumer.run(async (batch) => {
    const records: OcsfRecord[] = [];
    for (const r of batch.records) {
      try {
        records.push(JSON.parse(r.value.toString('utf8')) as OcsfRecord);
      } catch {
        stats.invalid++;
        logger.error({ code: 'ING_ERR_RECORD_INVALID', sink: config.name, offset: r.offset }, 'SIEM export: skipping a record that is not JSON');
      }
    }
    if (records.length === 0) return;
    stats.batches++;
    const t0 = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        await sink.send(records);
        stats.delivered += records.length;
        return;
      } catch (err) {
        stats.failures++;
        const delay = Math.min(config.retry_backoff_ms * 2 ** Math.min(attempt, 8), 10_000);
        logger.warn({ code: 'ING_ERR_SIEM_DELIVERY', sink: config.name, attempt, err: (err as Error).message }, 'ING_ERR_SIEM_DELIVERY: SIEM sink did not acknowledge, retrying');
        if (stopping || Date.now() - t0 + delay > config.retry_max_ms) throw err;
        await sleep(delay);
      }
    }
  });
  return {
    stats,
    async stop() {
      stopping = true;
      await consumer.stop();
      await sink.close();
    },
  };
}
