/**
 * OCSF export stage: every event of a batch (chained events, decoded statements, alerts) mapped to
 * OCSF and appended to `vigil.ocsf.v1` (key = session id, or identity for alerts) before the batch
 * is acknowledged, so a crash re-exports rather than loses. Redelivered batches export the same
 * records again: duplicates carry the same `metadata.uid` (the Vigil event id).
 */
import type { AlertEvent, ChainedEvent } from '@vigil/schemas';
import { Topics, type LogRecord, type Producer } from '@vigil/eventlog/types';
import type { QueryRow } from '../sinks/clickhouse/rows.ts';
import type { SessionDirectory } from '../transforms/detect/observe.ts';
import type { SiemConfig } from './config.ts';
import { toOcsf, type Exportable } from './ocsf/map.ts';

export interface OcsfExportStats {
  exported: number;
  unmapped: number;
}

export class OcsfExport {
  readonly stats: OcsfExportStats = { exported: 0, unmapped: 0 };

  constructor(
    private readonly config: SiemConfig['ocsf'],
    private readonly producer: Producer,
    private readonly directory: SessionDirectory,
    private readonly productVersion: string,
  ) {}

  records(events: ChainedEvent[], queries: QueryRow[], alerts: AlertEvent[]): LogRecord[] {
    const ctx = { session: (id: string) => this.directory.get(id), product_version: this.productVersion };
    const out: LogRecord[] = [];
    const add = (e: Exportable, key: string): void => {
      const r = toOcsf(e, ctx);
      if (!r) {
        this.stats.unmapped++;
        return;
      }
      out.push({ key, value: Buffer.from(JSON.stringify(r)), headers: { class_uid: String(r.class_uid), event_id: String((e as { event_id: string }).event_id) } });
    };
    for (const e of events) if (e.type !== 'frame' || this.config.include_frames) add(e, e.session_id);
    for (const q of queries) add({ ...q, type: 'query' }, q.session_id);
    for (const a of alerts) add(a, a.sub);
    return out;
  }

  async publish(events: ChainedEvent[], queries: QueryRow[], alerts: AlertEvent[]): Promise<void> {
    if (!this.config.enabled) return;
    const records = this.records(events, queries, alerts);
    if (records.length === 0) return;
    await this.producer.send(Topics.ocsf, records);
    this.stats.exported += records.length;
  }
}
