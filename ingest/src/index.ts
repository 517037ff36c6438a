/**
 * @vigil/ingest — stream processors from the event log to ClickHouse:
 *
 *   sources/log → transforms/decode/pg → transforms/mask → sinks/clickhouse
 *
 * `startIngest` consumes the gateway's chained-event topics as one consumer group, decodes
 * PostgreSQL frames into `query` events, and writes `sessions`, `events` and `queries` rows. A
 * batch's offsets are committed only after ClickHouse acknowledged its rows.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { Topics, type EventLog } from '@vigil/eventlog/types';
import { loadIngestConfig, type IngestConfig, type IngestConfigInput } from './config.ts';
import { silentLogger, type Logger } from './errors.ts';
import { Pipeline, type PipelineStats } from './pipeline.ts';
import { ClickHouseSink, type SinkStats } from './sinks/clickhouse/sink.ts';
import { LogSource, type SourceStats } from './sources/log/source.ts';
import { DataPathYield, type YieldStats } from './sources/log/yield.ts';
import { openMaskingRuntime } from './transforms/mask/runtime.ts';
import { AtRestMasker } from './transforms/mask/transform.ts';
import { DetectTransform, SessionDirectory, type DetectStats } from './transforms/detect/index.ts';
import { OcsfExport, type OcsfExportStats } from './siem/export.ts';
import type { ChainedEvent } from '@vigil/schemas';
import type { Producer } from '@vigil/eventlog/types';
import type { RowBatch } from './sinks/clickhouse/rows.ts';

export { loadIngestConfig, IngestConfigSchema, type IngestConfig, type IngestConfigInput } from './config.ts';
export { IngestErrors, IngestError, type IngestErrorCode, type Logger } from './errors.ts';
export { Pipeline } from './pipeline.ts';
export { ClickHouseSink } from './sinks/clickhouse/sink.ts';
export { LogSource, decodeBatch, type SourceBatch } from './sources/log/source.ts';
export { decodeFrame, finishSession, newDecoderState, type DecoderState, type Decoded, type PgFrame } from './transforms/decode/pg/decoder.ts';
export { openStore, releaseStore, applyDdl, type StoreConfig } from './store/client.ts';

export interface IngestStats {
  source: SourceStats;
  pipeline: PipelineStats;
  sink: SinkStats;
  detect?: DetectStats;
  ocsf?: OcsfExportStats;
  yield: YieldStats;
}

export interface IngestHandle {
  /** Live counters (for /metrics). */
  readonly stats: IngestStats;
  readonly config: IngestConfig;
  /** Stop consuming after the in-flight batch, flush the sink. Idempotent. */
  stop(): Promise<void>;
  /** The gateway in this process is busy (or no longer): ingest defers per `yield_to_gateway`. */
  setGatewayBusy(busy: boolean): void;
}

export interface StartIngestOptions {
  /** The ingest section (`{ ingest: {...} }` or the bare section), validated here; or a loaded config. */
  config?: { ingest?: IngestConfigInput } | IngestConfigInput;
  log: EventLog;
  /** Store client (`openStore`); the DDL must already be applied (`applyDdl`). Not closed by stop(). */
  store: ClickHouseClient;
  logger?: Logger;
  /** Environment for the hash key's SecretRef (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Vigil's version, stamped into OCSF metadata.product.version. */
  product_version?: string;
}

export async function startIngest(options: StartIngestOptions): Promise<IngestHandle> {
  const config = loadIngestConfig(options.config ?? {});
  const logger = options.logger ?? silentLogger;
  const sink = new ClickHouseSink(options.store, config, logger);
  const masking = await openMaskingRuntime(config.masking, logger, options.env);
  const { stage, detect, ocsf, producer } = await detectionStages(config, options, logger);
  const pipeline = new Pipeline(config, options.store, sink, logger, new AtRestMasker(masking), masking.preview, stage);
  const gate = new DataPathYield({ max_defer_ms: config.yield_to_gateway.max_defer_ms });
  const source = new LogSource(options.log, { group_id: config.group_id, topics: config.topics, max_batch_records: config.max_batch_rows }, logger, gate);
  try {
    await source.start((batch) => pipeline.handle(batch));
  } catch (err) {
    masking.close();
    throw err;
  }
  logger.info({ group_id: config.group_id, topics: config.topics }, 'ingest started');
  let stopped: Promise<void> | undefined;
  return {
    config,
    stats: { source: source.stats, pipeline: pipeline.stats, sink: sink.stats, detect: detect?.stats, ocsf: ocsf?.stats, yield: gate.stats },
    setGatewayBusy: (busy) => gate.setBusy(busy),
    stop() {
      stopped ??= (async () => {
        // Closing the sink first makes an insert stuck in retry give up (ING_ERR_STOPPED: the batch
        // is redelivered on the next start) so the consumer's in-flight batch can finish.
        const closing = sink.close();
        await source.stop();
        await closing;
        await sink.flush();
        masking.close();
        await producer?.close();
        logger.info({ ...pipeline.stats }, 'ingest stopped');
      })();
      return stopped;
    },
  };
}

/**
 * decode → detect → OCSF export, as one stage before the store write. Producing (alerts topic, OCSF
 * topic) goes to the log ingest consumes: its own (`vigil ingest`) or, in `vigil start`'s ingest
 * thread, the main thread's through the port bridge (eventlog/src/port). A log that cannot produce
 * at all leaves alerts stored but not published and the OCSF export off, and says so.
 */
async function detectionStages(config: IngestConfig, options: StartIngestOptions, logger: Logger) {
  let producer: Producer | undefined;
  try {
    producer = options.log.producer();
    await options.log.ensureTopics([Topics.alerts, Topics.ocsf]);
  } catch (err) {
    producer = undefined;
    logger.warn({ err: (err as Error).message }, 'ingest cannot produce to this log: alerts are stored but not published, OCSF export is off');
  }
  const directory = new SessionDirectory();
  const detect = config.detect.enabled
    ? await DetectTransform.create({ config: config.detect, store: options.store, producer, logger, retry_backoff_ms: config.retry_backoff_ms, retry_max_ms: config.retry_max_ms, directory })
    : undefined;
  const ocsf = producer && config.siem.ocsf.enabled ? new OcsfExport(config.siem.ocsf, producer, directory, options.product_version ?? '0.1.0') : undefined;
  if (!detect && !ocsf) return { stage: undefined, detect, ocsf, producer };
  const stage = async (events: ChainedEvent[], rows: RowBatch): Promise<void> => {
    if (!detect) await directory.resolve(options.store, events, rows.queries);
    const alerts = detect ? await detect.handle(events, rows) : [];
    await ocsf?.publish(events, rows.queries, alerts);
    for (const e of events) if (e.type === 'session.ended') directory.delete(e.session_id);
  };
  return { stage, detect, ocsf, producer };
}
