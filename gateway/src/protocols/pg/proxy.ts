/**
 * The PostgreSQL listener: accepts clients, and per connection runs a PgSession (pg-session.ts).
 * Process-wide concerns live here: the cancel-key registry, EventSink pressure fan-out, metrics,
 * shutdown. Socket-touching code of this protocol is in this file, pg-session.ts and upstream.ts.
 */
import net from 'node:net';
import type tls from 'node:tls';
import type { TokenVerifier } from '@vigil/identity/types';
import type { RecordSink } from '../../recorder/sink.ts';
import type { ApprovalService } from '../../approvals/broker.ts';
import type { PostgresListenerConfig, TargetConfig } from '../../config.ts';
import type { Logger } from '../../logger.ts';
import { gatewayError } from '../../errors.ts';
import { CancelRegistry } from './cancel.ts';
import { PgSession } from './pg-session.ts';
import type { PolicyRuntime } from './enforce.ts';
import type { MaskRuntime } from './mask-stream.ts';
import { CatalogRegistry } from './catalog.ts';

export interface PgProxyOptions {
  listener: PostgresListenerConfig;
  gatewayId: string;
  gatewayVersion: string;
  failClosed: boolean;
  /** Refuse new sessions after this long under event-log backpressure (0 = never). */
  maxLogStallMs: number;
  targets: ReadonlyMap<string, TargetConfig>;
  /** CA bundles of verify-full targets, loaded at start (target id → PEM). */
  targetCa: ReadonlyMap<string, Buffer>;
  verifier: TokenVerifier;
  sink: RecordSink;
  logger: Logger;
  /** Environment for SecretRef `{ env }` resolution (resolved per upstream connection, so rotation applies). */
  env: NodeJS.ProcessEnv;
  /** Client-side TLS; undefined answers SSLRequest with 'N'. */
  secureContext: tls.SecureContext | undefined;
  /** Inline enforcement (gateway.policy_file); undefined: no policy, no parsing. */
  policy?: PolicyRuntime;
  /** Just-in-time approval (holds + the control topic); undefined: require_approval is enforced as a block. */
  approvals?: ApprovalService;
  /** Inline masking (with a policy): the compiled engine and the catalog settings. */
  mask?: MaskRuntime;
}

export interface PgMetrics {
  connections_total: number;
  sessions_started_total: number;
  auth_failures_total: number;
  refused_total: number;
  cancels_forwarded_total: number;
  cancels_dropped_total: number;
  approvals_held_total: number;
  bytes_c2s_total: number;
  bytes_s2c_total: number;
}

/** How long shutdown waits for sessions to flush their goodbye before destroying sockets. */
const SHUTDOWN_GRACE_MS = 2000;

export class PgProxy {
  readonly sessions = new Set<PgSession>();
  readonly cancels = new CancelRegistry();
  readonly metrics: PgMetrics = {
    connections_total: 0,
    sessions_started_total: 0,
    auth_failures_total: 0,
    refused_total: 0,
    cancels_forwarded_total: 0,
    cancels_dropped_total: 0,
    approvals_held_total: 0,
    bytes_c2s_total: 0,
    bytes_s2c_total: 0,
  };
  private readonly server: net.Server;
  private closing = false;
  /** Target catalogs for masking, shared by every session (catalog.ts). */
  readonly catalogs: CatalogRegistry;

  constructor(readonly options: PgProxyOptions) {
    this.catalogs = new CatalogRegistry({
      env: options.env,
      connectTimeoutMs: options.listener.upstream_connect_timeout_ms,
      ttlMs: options.mask?.catalog_ttl_ms ?? 30_000,
      logger: options.logger,
    });
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on('error', (err) => this.options.logger.error({ err: (err as Error).message }, 'pg listener error'));
  }

  listen(): Promise<{ host: string; port: number }> {
    const { listen_host: host, listen_port: port } = this.options.listener;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void =>
        reject(gatewayError('GW_ERR_LISTEN', `cannot listen on ${host}:${port}: ${err.code ?? err.message}`, err));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.removeListener('error', onError);
        const addr = this.server.address() as net.AddressInfo;
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  private accept(socket: net.Socket): void {
    // Registered first thing: a socket error must never become an uncaught exception.
    socket.on('error', () => {});
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.metrics.connections_total++;
    try {
      const session = new PgSession(this, socket);
      this.sessions.add(session);
      // A session that will be refused for a stalled log must still be read, to be told so.
      if (this.options.sink.underPressure && !this.auditRefusal()) session.setSinkPressure(true);
    } catch (err) {
      this.options.logger.error({ err: (err as Error).message }, 'pg session setup failed');
      socket.destroy();
    }
  }

  /** Called by the gateway when the EventSink's pressure flips. */
  onSinkPressure(on: boolean): void {
    for (const s of this.sessions) s.setSinkPressure(on);
  }

  /**
   * Called when the EventSink latched a non-retriable failure: with fail-closed, no session may go
   * on unrecorded, so every live session ends (57P03) — new ones are refused at startup already.
   */
  /** Why a new session must be refused now, or undefined: fail-closed and the log failed or stalled. */
  auditRefusal(): string | undefined {
    const o = this.options;
    if (!o.failClosed) return undefined;
    if (o.sink.failure) return 'audit log unavailable';
    if (o.maxLogStallMs > 0 && o.sink.pressuredForMs() > o.maxLogStallMs) return 'audit log unavailable (not keeping up)';
    return undefined;
  }

  onSinkFailure(): void {
    if (!this.options.failClosed) return;
    for (const s of [...this.sessions]) s.auditUnavailable();
  }

  /** Stop listening, end every session with gateway_shutdown, wait until they are gone. */
  async close(): Promise<void> {
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const sessions = [...this.sessions];
    for (const s of sessions) s.shutdown();
    const all = Promise.all(sessions.map((s) => s.closed));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, SHUTDOWN_GRACE_MS)))]);
    clearTimeout(timer);
    for (const s of sessions) s.destroySockets();
    await stopped;
  }
}
