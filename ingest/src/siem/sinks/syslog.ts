/**
 * Syslog over TCP or TLS (RFC 5425) with octet-counted framing, one RFC 5424 message per OCSF
 * record carrying CEF. TCP syslog has no application ack: a batch counts as delivered once every
 * frame was written and flushed to the kernel (write callback) on a connection that is still up;
 * a connection error before that fails the batch and the whole batch is sent again on a new
 * connection (duplicates carry the same externalId = event id).
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { hostname } from 'node:os';
import type { OcsfRecord } from '../ocsf/map.ts';
import { octetCounted, syslogLine } from './cef.ts';
import { SinkDeliveryError, type SiemSink } from './deliver.ts';

export class SyslogSink implements SiemSink {
  private socket: Socket | undefined;
  private dead = true;
  private readonly settle_ms = 50;
  private readonly host = hostname();

  constructor(
    private readonly targetHost: string,
    private readonly port: number,
    private readonly tls: boolean,
    private readonly appName: string,
    private readonly version: string,
    private readonly timeout_ms: number,
    private readonly ca?: Buffer,
  ) {}

  private open(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed && !this.dead) return Promise.resolve(this.socket);
    this.socket?.destroy();
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new SinkDeliveryError(`syslog connect failed: ${err.message}`));
      const s: Socket = this.tls
        ? tlsConnect({ host: this.targetHost, port: this.port, servername: this.targetHost, ...(this.ca ? { ca: this.ca } : {}) }, () => done())
        : tcpConnect({ host: this.targetHost, port: this.port }, () => done());
      const done = () => {
        s.off('error', onError);
        s.on('error', () => s.destroy());
        this.dead = false;
        const die = () => {
          if (this.socket === s) this.dead = true;
        };
        s.once('end', die);
        s.once('close', die);
        s.setTimeout(this.timeout_ms, () => s.destroy(new Error('timeout')));
        this.socket = s;
        resolve(s);
      };
      s.once('error', onError);
    });
  }

  async send(records: OcsfRecord[]): Promise<void> {
    const s = await this.open();
    const payload = Buffer.concat(records.map((r) => octetCounted(syslogLine(r, this.appName, this.version, this.host))));
    await new Promise<void>((resolve, reject) => {
      const onClose = () => reject(new SinkDeliveryError('syslog connection closed before the batch was written'));
      s.once('close', onClose);
      s.write(payload, (err) => {
        s.off('close', onClose);
        if (err || s.destroyed) reject(new SinkDeliveryError(`syslog write failed: ${err?.message ?? 'connection closed'}`));
        else resolve();
      });
    })
      .then(() => new Promise((r) => setTimeout(r, this.settle_ms)))
      .then(() => {
        if (this.dead || s.destroyed) throw new SinkDeliveryError('syslog receiver closed the connection before the batch settled');
      })
      .catch((err: unknown) => {
      s.destroy();
      this.socket = undefined;
      throw err;
    });
  }

  async close(): Promise<void> {
    this.socket?.end();
    this.socket = undefined;
  }
}
