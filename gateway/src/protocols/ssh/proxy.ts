/**
 * The SSH listener: an ssh2 Server (the gateway's persisted host key) that runs one SshSession per
 * connection. Process-wide concerns live here: session limit, EventSink pressure and failure
 * fan-out, metrics, shutdown. The only file of this protocol that owns a listening socket.
 */
import type { ApprovalService } from '../../approvals/broker.ts';
import net from 'node:net';
import ssh2 from 'ssh2';
import type { TokenVerifier } from '@vigil/identity/types';
import type { RecordSink } from '../../recorder/sink.ts';
import type { Logger } from '../../logger.ts';
import { gatewayError } from '../../errors.ts';
import type { CompiledPolicy } from '../../policy/index.ts';
import type { SshListenerConfig, SshTargetConfig } from './config.ts';
import type { PinnedKey } from './host-keys.ts';
import { SshSession } from './ssh-session.ts';
import type { PublicKeyDirectory } from './public-keys.ts';

const { Server } = ssh2;

export type SshTarget = SshTargetConfig & { readonly pinned: readonly PinnedKey[] };

export interface SshProxyOptions {
  listener: SshListenerConfig;
  hostKey: Buffer;
  gatewayId: string;
  gatewayVersion: string;
  failClosed: boolean;
  maxLogStallMs: number;
  targets: ReadonlyMap<string, SshTarget>;
  verifier: TokenVerifier;
  sink: RecordSink;
  logger: Logger;
  env: NodeJS.ProcessEnv;
  /** Inline command policy (gateway.policy_file); undefined: no policy. */
  policy?: { current(): CompiledPolicy };
  /** Just-in-time approval of commands (approvals/broker.ts); undefined: require_approval is refused. */
  approvals?: ApprovalService;
  /** Public keys mapped to identities (gateway.ssh.public_keys[_file]); undefined: token logins only. */
  publicKeys?: PublicKeyDirectory;
}

export interface SshMetrics {
  connections_total: number;
  sessions_started_total: number;
  auth_failures_total: number;
  refused_total: number;
  channels_refused_total: number;
  commands_blocked_total: number;
  bytes_c2s_total: number;
  bytes_s2c_total: number;
}

const SHUTDOWN_GRACE_MS = 2000;

export class SshProxy {
  readonly sessions = new Set<SshSession>();
  readonly metrics: SshMetrics = {
    connections_total: 0,
    sessions_started_total: 0,
    auth_failures_total: 0,
    refused_total: 0,
    channels_refused_total: 0,
    commands_blocked_total: 0,
    bytes_c2s_total: 0,
    bytes_s2c_total: 0,
  };
  private readonly ssh: InstanceType<typeof Server>;
  private readonly server: net.Server;
  private closing = false;

  constructor(readonly options: SshProxyOptions) {
    this.ssh = new Server({ hostKeys: [options.hostKey], ident: 'Vigil' }, (client, info) => {
      this.metrics.connections_total++;
      try {
        // Over the limit still gets a handshake, so the refusal can carry TOO_MANY_CONNECTIONS.
        const session = new SshSession(this, client, info, this.sessions.size >= options.listener.max_sessions);
        this.sessions.add(session);
        if (options.sink.underPressure && !this.auditRefusal()) session.setSinkPressure(true);
      } catch (err) {
        options.logger.error({ err: (err as Error).message }, 'ssh session setup failed');
        client.end();
      }
    });
    this.ssh.on('error', (err: Error) => options.logger.error({ err: err.message }, 'ssh server error'));
    this.server = net.createServer((socket) => {
      socket.on('error', () => {});
      if (this.closing) return void socket.destroy();
      this.ssh.injectSocket(socket);
    });
  }

  listen(): Promise<{ host: string; port: number }> {
    const { listen_host: host, listen_port: port } = this.options.listener;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(gatewayError('GW_ERR_LISTEN', `cannot listen on ${host}:${port}: ${err.code ?? err.message}`, err));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.removeListener('error', onError);
        this.server.on('error', (err) => this.options.logger.error({ err: err.message }, 'ssh listener error'));
        const addr = this.server.address() as net.AddressInfo;
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  /** Why a new session must be refused now, or undefined (same rule as PostgreSQL). */
  auditRefusal(): string | undefined {
    const o = this.options;
    if (!o.failClosed) return undefined;
    if (o.sink.failure) return 'audit log unavailable';
    if (o.maxLogStallMs > 0 && o.sink.pressuredForMs() > o.maxLogStallMs) return 'audit log unavailable (not keeping up)';
    return undefined;
  }

  onSinkPressure(on: boolean): void {
    for (const s of this.sessions) s.setSinkPressure(on);
  }

  onSinkFailure(): void {
    if (!this.options.failClosed) return;
    for (const s of [...this.sessions]) s.auditUnavailable();
  }

  async close(): Promise<void> {
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const sessions = [...this.sessions];
    for (const s of sessions) s.shutdown();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(sessions.map((s) => s.closed)), new Promise<void>((r) => (timer = setTimeout(r, SHUTDOWN_GRACE_MS)))]);
    clearTimeout(timer);
    await stopped;
  }
}
