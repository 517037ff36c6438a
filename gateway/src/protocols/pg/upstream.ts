/**
 * Dialing the target: TCP with a timeout, then (per target) SSLRequest and a TLS client handshake
 * with CA verification for verify-full. Also the fire-and-forget CancelRequest forwarder. This and
 * proxy.ts are the only socket-touching files of the pg protocol folder; the split keeps each
 * module small (dialing has nothing to do with a session's relay loop).
 */
import net from 'node:net';
import tls from 'node:tls';
import { cancelRequest, sslRequest } from './codec.ts';
import { gatewayError, type GatewayError } from '../../errors.ts';

export interface DialTarget {
  id: string;
  host: string;
  port: number;
  tls: 'disable' | 'require' | 'verify-full';
  /** PEM bytes of the CA bundle (verify-full); undefined = Node's bundled CAs. */
  ca?: Buffer;
}

export interface Dialed {
  socket: net.Socket;
  tls: boolean;
}

/**
 * Reads into a buffer the caller owns and reuses (net.Socket `onread`): no allocation per read,
 * which on a ping-pong workload is a malloc, a realloc and collector pressure per message. The
 * bytes passed to `onRead` are valid only until it returns unless `buffer()` then hands out a
 * new buffer (the caller keeps the old one, e.g. queued in a write).
 */
export interface ReusedReads {
  buffer(): Buffer;
  onRead(bytes: Buffer): void;
}

const SSL_YES = 0x53;

/** Connect to a target. Rejects with GW_ERR_UPSTREAM_CONNECT / GW_ERR_UPSTREAM_TLS; never leaks secrets (there are none here). */
export function dial(target: DialTarget, timeoutMs: number, reads?: ReusedReads): Promise<Dialed> {
  return new Promise<Dialed>((resolve, reject) => {
    const where = `target "${target.id}" at ${target.host}:${target.port}`;
    // Plain TCP only: TLS reads the SSLRequest answer as a 'data' event, then through the TLS socket.
    const onread = reads && target.tls === 'disable' ? { buffer: () => reads.buffer(), callback: (n: number, buf: Uint8Array) => reads.onRead((buf as Buffer).subarray(0, n)) } : undefined;
    const raw = net.connect({ host: target.host, port: target.port, onread } as net.NetConnectOpts);
    raw.setNoDelay(true);
    // Permanent safety net: an 'error' with no listener would crash the process. The session's own
    // handlers do the real work once attached.
    raw.on('error', () => {});
    let settled = false;
    let current: net.Socket = raw;
    const finish = (err: GatewayError | undefined, result?: Dialed): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      raw.removeListener('error', onError);
      if (err) {
        current.destroy();
        raw.destroy();
        reject(err);
      } else resolve(result!);
    };
    const onError = (err: NodeJS.ErrnoException): void =>
      finish(gatewayError('GW_ERR_UPSTREAM_CONNECT', `could not connect to ${where}: ${err.code ?? err.message}`));
    const timer = setTimeout(
      () => finish(gatewayError('GW_ERR_UPSTREAM_CONNECT', `could not connect to ${where}: timeout after ${timeoutMs} ms`)),
      timeoutMs,
    );
    raw.once('error', onError);
    raw.once('connect', () => {
      if (target.tls === 'disable') return finish(undefined, { socket: raw, tls: false });
      raw.write(sslRequest());
      raw.once('data', (answer: Buffer) => {
        // Exactly one byte may come back; more would be data injected before the handshake
        // (CVE-2021-23222's shape), so refuse.
        if (answer.length !== 1) {
          return finish(gatewayError('GW_ERR_UPSTREAM_PROTOCOL', `${where} sent unexpected data in answer to SSLRequest`));
        }
        if (answer[0] !== SSL_YES) return finish(gatewayError('GW_ERR_UPSTREAM_TLS', `${where} does not accept TLS (answered SSLRequest with 'N')`));
        raw.pause();
        const verify = target.tls === 'verify-full';
        const secure = tls.connect({
          socket: raw,
          servername: net.isIP(target.host) ? undefined : target.host,
          ca: target.ca,
          rejectUnauthorized: verify,
          // 'require' encrypts without authenticating the target (libpq's sslmode=require).
          checkServerIdentity: verify ? tls.checkServerIdentity : () => undefined,
        });
        current = secure;
        secure.on('error', () => {});
        secure.once('error', (err: NodeJS.ErrnoException) =>
          finish(gatewayError('GW_ERR_UPSTREAM_TLS', `TLS to ${where} failed: ${err.code ?? err.message}`)),
        );
        secure.once('secureConnect', () => finish(undefined, { socket: secure, tls: true }));
      });
    });
  });
}

/** Send a CancelRequest with the target's own key. PostgreSQL answers nothing; errors are reported to `onError` only. */
export function sendCancel(target: DialTarget, pid: number, secret: Buffer, timeoutMs: number, onError: (err: Error) => void): void {
  dial(target, timeoutMs).then(
    ({ socket }) => {
      socket.on('error', () => {});
      socket.end(cancelRequest(pid, secret));
      setTimeout(() => socket.destroy(), timeoutMs).unref();
    },
    onError,
  );
}
