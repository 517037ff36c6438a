/**
 * HTTPS webhook: one POST per batch, body = JSON array of OCSF records. Signed with HMAC-SHA256
 * over `<timestamp>.<body>`: headers `X-Vigil-Timestamp` (ms) and `X-Vigil-Signature: sha256=<hex>`,
 * so a receiver can verify origin and refuse replays. Acknowledged by any 2xx.
 */
import { createHmac } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { OcsfRecord } from '../ocsf/map.ts';
import { SinkDeliveryError, type SiemSink } from './deliver.ts';

export function sign(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export function post(url: string, headers: Record<string, string>, body: string, timeout_ms: number, ca?: Buffer): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  const req = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = req(u, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers }, timeout: timeout_ms, ...(ca ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    r.on('timeout', () => r.destroy(new SinkDeliveryError(`no answer within ${timeout_ms} ms`)));
    r.on('error', (err) => reject(new SinkDeliveryError(`request failed: ${err.message}`)));
    r.end(body);
  });
}

export class WebhookSink implements SiemSink {
  constructor(
    private readonly url: string,
    private readonly secret: string,
    private readonly timeout_ms: number,
    private readonly ca?: Buffer,
  ) {}

  async send(records: OcsfRecord[]): Promise<void> {
    const body = JSON.stringify(records);
    const ts = String(Date.now());
    const res = await post(this.url, { 'x-vigil-timestamp': ts, 'x-vigil-signature': sign(this.secret, ts, body) }, body, this.timeout_ms, this.ca);
    if (res.status < 200 || res.status >= 300) throw new SinkDeliveryError(`webhook answered HTTP ${res.status}`);
  }

  async close(): Promise<void> {}
}
