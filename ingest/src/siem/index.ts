/** Start every configured SIEM sink on a log this process owns; returns one stop for all. */
import type { EventLog } from '@vigil/eventlog/types';
import type { Logger } from '../errors.ts';
import type { SiemConfig } from './config.ts';
import { createSink, runSink, type SinkRunner } from './sinks/deliver.ts';

export async function startSiemSinks(config: SiemConfig, log: EventLog, logger: Logger, version: string): Promise<() => Promise<void>> {
  const runners: SinkRunner[] = [];
  try {
    for (const s of config.sinks) {
      runners.push(await runSink(log, s, createSink(s, version), logger));
      logger.info({ sink: s.name, kind: s.kind }, 'SIEM sink started');
    }
  } catch (err) {
    for (const r of runners) await r.stop();
    throw err;
  }
  return async () => {
    for (const r of runners) await r.stop();
  };
}
