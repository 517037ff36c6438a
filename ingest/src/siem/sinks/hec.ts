/**
 * Splunk HTTP Event Collector: POST <url>/services/collector/event with `Authorization: Splunk
 * <token>`, body = concatenated event objects ({time (s), sourcetype, index?, event}). Acknowledged
 * when HEC answers 200 with `{"code":0}`; other codes (busy 503/code 9, …) are retried.
 */
import type { OcsfRecord } from '../ocsf/map.ts';
import { SinkDeliveryError, type SiemSink } from './deliver.ts';
import { post } from './webhook.ts';

export class HecSink implements SiemSink {
  private readonly endpoint: string;

  constructor(
    url: string,
    private readonly token: string,
    private readonly sourcetype: string,
    private readonly index: string | undefined,
    private readonly timeout_ms: number,
    private readonly ca?: Buffer,
  ) {
    this.endpoint = `${url.replace(/\/+$/, '')}/services/collector/event`;
  }

  async send(records: OcsfRecord[]): Promise<void> {
    const body = records
      .map((r) => JSON.stringify({ time: Number(r.time) / 1000, sourcetype: this.sourcetype, ...(this.index ? { index: this.index } : {}), source: 'vigil', event: r }))
      .join('\n');
    const res = await post(this.endpoint, { authorization: `Splunk ${this.token}` }, body, this.timeout_ms, this.ca);
    let code: number | undefined;
    try {
      code = (JSON.parse(res.body) as { code?: number }).code;
    } catch {
      code = undefined;
    }
    // The token is never part of the error.
    if (res.status !== 200 || code !== 0) throw new SinkDeliveryError(`HEC answered HTTP ${res.status} code ${code ?? '?'}`);
  }

  async close(): Promise<void> {}
}
