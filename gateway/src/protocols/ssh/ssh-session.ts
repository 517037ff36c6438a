/**
 * One client connection through the SSH gateway.
 *
 *   Auth ──token ok──► Connecting ──target ready──► Open ──either side closes──► Closed
 *     └── bad name / unknown target / too many tries / audit down ──────────────► Closed
 *
 * Auth: the SSH user name is `<sub>@<target>` (login.ts); the token is the password, or the answer
 * to a keyboard-interactive prompt. Only after the target accepted the gateway's own credentials
 * (and presented a pinned host key) does the client get USERAUTH_SUCCESS: the caller never holds a
 * session the gateway could not open.
 *
 * Auth also accepts a public key mapped to an identity (public-keys.ts). Forwarding: forwarding.ts.
 *
 * Every refusal is an event (auth.failed, protocol.refused, ssh.channel/ssh.request refused) and a
 * protocol-correct answer (USERAUTH_FAILURE, DISCONNECT with a reason code, CHANNEL_OPEN_FAILURE,
 * CHANNEL_FAILURE). Secrets (token, target key or password) are never put in an event or a log line.
 */
import { SessionHolds } from '../../approvals/session-hold.ts';
import { randomUUID } from 'node:crypto';
import ssh2, { type AuthContext, type ClientInfo, type Connection, type PublicKeyAuthContext } from 'ssh2';
import type { ChainInput, EndReason } from '@vigil/schemas';
import type { VerifiedIdentity } from '@vigil/identity/types';
import { SessionRecorder } from '../../recorder/recorder.ts';
import type { GatewayErrorCode } from '../../errors.ts';
import { resolveSecret } from '../../secrets.ts';
import type { CompiledPolicy, Identity } from '../../policy/index.ts';
import { tokenFailure } from '../pg/token.ts';
import { parseLoginName } from './login.ts';
import { fingerprintOf, hostKeyAlgorithms, isPinned } from './host-keys.ts';
import { verifySignature, type KeyIdentity } from './public-keys.ts';
import { SessionChannel } from './channel.ts';
import { AgentBridge, Forwarding } from './forwarding.ts';
import type { SshProxy, SshTarget } from './proxy.ts';

const { Client } = ssh2;

/** RFC 4253 §11.1 reason codes we use. */
export const DISCONNECT = {
  HOST_NOT_ALLOWED_TO_CONNECT: 1,
  PROTOCOL_ERROR: 2,
  SERVICE_NOT_AVAILABLE: 7,
  BY_APPLICATION: 11,
  TOO_MANY_CONNECTIONS: 12,
  NO_MORE_AUTH_METHODS_AVAILABLE: 14,
  ILLEGAL_USER_NAME: 15,
} as const;
/** RFC 4254 §5.1 channel open failure reasons. */
const OPEN_FAILURE = { ADMINISTRATIVELY_PROHIBITED: 1, CONNECT_FAILED: 2, RESOURCE_SHORTAGE: 4 } as const;

export enum SshState {
  /** Waiting for a token. */
  Auth = 'auth',
  /** Token verified; logging in to the target. */
  Connecting = 'connecting',
  /** Relaying channels. */
  Open = 'open',
  Closed = 'closed',
}

type AuthMethod = 'publickey' | 'keyboard-interactive' | 'password';
const METHODS: AuthMethod[] = ['keyboard-interactive', 'password'];

export class SshSession {
  readonly id = randomUUID();
  readonly recorder: SessionRecorder;
  state = SshState.Auth;
  target!: SshTarget;
  private identity: VerifiedIdentity | undefined;
  private claimedUser: string | undefined;
  private attempts = 0;
  private upstream: InstanceType<typeof Client> | undefined;
  private readonly channels = new Set<SessionChannel>();
  readonly forwarding = new Forwarding(this);
  private nextChannel = 0;
  private readonly startedAt = performance.now();
  private authTimer: NodeJS.Timeout;
  private started = false;
  private resolveClosed!: () => void;
  readonly closed = new Promise<void>((r) => (this.resolveClosed = r));
  /**
   * The client's connection has closed. ssh2 has then torn down its protocol state, and closing a
   * channel of it throws (compressed connections: "Invalid Zlib instance", even from ssh2's own
   * deferred close), so channels facing the client are left alone from then on.
   */
  private clientGone = false;

  constructor(
    private readonly proxy: SshProxy,
    private readonly client: Connection,
    private readonly info: ClientInfo,
    private readonly overLimit: boolean,
  ) {
    const o = proxy.options;
    this.recorder = new SessionRecorder(o.sink, this.id, { gateway_id: o.gatewayId, gateway_version: o.gatewayVersion });
    client.on('error', () => {});
    client.on('authentication', (ctx) => this.onAuth(ctx));
    client.on('ready', () => this.onReady());
    client.on('close', () => {
      this.clientGone = true;
      this.end('client_closed', 'client closed the connection');
    });
    this.authTimer = setTimeout(() => this.refuse('GW_ERR_AUTH_TIMEOUT', 'authentication took too long', 'timeout', DISCONNECT.BY_APPLICATION, 'auth'), o.listener.auth_timeout_ms);
    this.authTimer.unref();
  }

  get options() {
    return this.proxy.options;
  }

  private get clientAddr(): string {
    return `${this.info.ip}:${this.info.port}`;
  }

  private identityFields() {
    const t = this.target as SshTarget | undefined;
    return {
      client_addr: this.clientAddr,
      protocol: 'ssh' as const,
      ...(this.identity ? { sub: this.identity.sub, groups: this.identity.groups, issuer: this.identity.issuer, actor_kind: this.identity.actor_kind } : {}),
      ...(t ? { target_id: t.id, target_addr: `${t.host}:${t.port}`, login: t.user } : {}),
    };
  }

  /** Record an event in this session's chain. */
  event(input: ChainInput): void {
    if (this.state === SshState.Closed && input.type !== 'session.ended') return;
    this.recorder.event(input);
  }

  policy(): CompiledPolicy | undefined {
    return this.proxy.options.policy?.current();
  }

  /** Approval waits of one channel, recorded in this session's chain (approvals/session-hold.ts). */
  holds(): SessionHolds | undefined {
    const service = this.proxy.options.approvals;
    if (!service) return undefined;
    return new SessionHolds({
      service,
      sessionId: this.id,
      requester: this.identity!.sub,
      fields: () => this.identityFields(),
      record: (input) => this.recorder.sealedEvent(input),
      logger: this.proxy.options.logger,
    });
  }

  identityForPolicy(): Identity {
    const id = this.identity!;
    return { sub: id.sub, groups: id.groups, actor_kind: id.actor_kind };
  }

  upstreamConnection(): InstanceType<typeof Client> {
    return this.upstream!;
  }

  clientConnection(): Connection {
    return this.client;
  }

  /** The next gateway channel number (session and forwarded channels share the counter). */
  allocChannel(): number {
    return this.nextChannel++;
  }

  isOpen(): boolean {
    return this.state === SshState.Open;
  }

  blocked(b: { channel: number; protocol_kind: 'ssh_exec' | 'ssh_shell'; statement: string; message: string; rule_id: string | null; action: string; reason: 'rule' | 'default' | 'unparsable' }): void {
    this.proxy.metrics.commands_blocked_total++;
    this.event({
      type: 'policy.blocked',
      version: 1,
      ...this.identityFields(),
      rule_id: b.rule_id,
      action: b.action === 'require_approval' ? 'require_approval' : 'block',
      reason: b.reason,
      code: 'GW_ERR_POLICY_BLOCKED',
      message: b.message,
      protocol_kind: b.protocol_kind,
      channel: b.channel,
      statement: b.statement,
      features: [],
      relations: [],
    });
  }

  // ---- authentication ------------------------------------------------------------------------

  private onAuth(ctx: AuthContext): void {
    if (this.state !== SshState.Auth) return ctx.reject();
    if (this.overLimit) return this.refuse('GW_ERR_TOO_MANY_SESSIONS', 'the gateway holds max_sessions connections', 'refused', DISCONNECT.TOO_MANY_CONNECTIONS);
    const refusal = this.proxy.auditRefusal();
    if (refusal) return this.refuse('GW_ERR_AUDIT_UNAVAILABLE', refusal, 'refused', DISCONNECT.SERVICE_NOT_AVAILABLE);
    this.claimedUser = ctx.username.slice(0, 256);
    const name = parseLoginName(ctx.username);
    if (!name) return this.refuse('GW_ERR_SSH_LOGIN_NAME', 'the SSH user name must be <sub>@<target>', 'refused', DISCONNECT.ILLEGAL_USER_NAME, 'auth');
    const target = this.proxy.options.targets.get(name.target);
    if (!target) return this.refuse('GW_ERR_UNKNOWN_TARGET', `no SSH target "${name.target}"`, 'refused', DISCONNECT.ILLEGAL_USER_NAME, 'auth');
    this.target = target;

    if (ctx.method === 'password') return void this.checkToken(ctx, name.sub, ctx.password);
    if (ctx.method === 'keyboard-interactive') {
      return ctx.prompt([{ prompt: 'Vigil access token: ', echo: false }], 'Vigil', `Log in to ${target.id} as ${name.sub}`, (answers) => {
        void this.checkToken(ctx, name.sub, answers[0] ?? '');
      });
    }
    if (ctx.method === 'publickey' && this.options.publicKeys) return void this.checkKey(ctx, name.sub);
    // none / hostbased (and publickey with no keys configured): say which methods work, no event
    // (clients probe these first).
    ctx.reject(this.methods());
  }

  /** Token methods always; publickey only when keys are mapped (clients then try their keys first). */
  private methods(): AuthMethod[] {
    return this.options.publicKeys ? ['publickey', ...METHODS] : METHODS;
  }

  /**
   * Public-key login (RFC 4252 §7): a query (no signature) is answered PK_OK only for a key mapped
   * to the claimed `sub`; the signed request must verify. Every refused key is an auth.failed event
   * and counts toward max_auth_attempts, as in OpenSSH (a client cannot probe keys without limit).
   */
  private async checkKey(ctx: PublicKeyAuthContext, sub: string): Promise<void> {
    const found = await this.options.publicKeys!.lookup(ctx.key.data);
    if (this.state !== SshState.Auth) return;
    const fp = fingerprintOf(ctx.key.data);
    const now = Date.now();
    let code: GatewayErrorCode | undefined;
    let reason = '';
    if ('unavailable' in found) [code, reason] = ['GW_ERR_SSH_KEYS_UNAVAILABLE', `public key ${fp}: ${found.unavailable}`];
    else if ('missing' in found) [code, reason] = ['GW_ERR_SSH_KEY_UNKNOWN', `public key ${fp} is not mapped to an identity`];
    else if (found.found.sub !== sub) [code, reason] = ['GW_ERR_SUB_MISMATCH', `public key ${fp} is not mapped to "${sub}"`];
    else if (found.found.expires_at_ms !== undefined && found.found.expires_at_ms <= now) [code, reason] = ['GW_ERR_SSH_KEY_EXPIRED', `public key ${fp} expired`];
    else if (!ctx.signature) return ctx.accept(); // PK_OK: the client signs next
    else if (!verifySignature(ctx.key.data, ctx.blob!, ctx.signature, ctx.hashAlgo)) [code, reason] = ['GW_ERR_SSH_KEY_SIGNATURE', `the signature made with public key ${fp} does not verify`];
    if (code) return this.authFailed(ctx, code, reason);
    const k = (found as { found: KeyIdentity }).found;
    this.identity = { sub: k.sub, groups: k.groups, actor_kind: k.actor_kind, roles: [], issuer: `ssh-publickey:${k.fingerprint}` };
    this.state = SshState.Connecting;
    this.connectUpstream(ctx);
  }

  private async checkToken(ctx: AuthContext, sub: string, token: string): Promise<void> {
    this.attempts++;
    let code: GatewayErrorCode | undefined;
    let reason = '';
    if (token.length === 0) {
      code = 'GW_ERR_TOKEN_MISSING';
      reason = 'no token given';
    } else {
      try {
        this.identity = await this.proxy.options.verifier.verify(token);
        if (this.identity.sub !== sub) {
          code = 'GW_ERR_SUB_MISMATCH';
          reason = `token sub does not match the user name "${sub}"`;
          this.identity = undefined;
        }
      } catch (err) {
        ({ code, reason } = tokenFailure(err));
      }
    }
    if (this.state !== SshState.Auth) return;
    if (code) return this.authFailed(ctx, code, reason);
    this.state = SshState.Connecting;
    this.connectUpstream(ctx);
  }

  /** A refused token or key: event, USERAUTH_FAILURE, and a disconnect past max_auth_attempts. */
  private authFailed(ctx: AuthContext, code: GatewayErrorCode, reason: string): void {
    if (ctx.method === 'publickey') this.attempts++; // checkToken counts its own before awaiting
    this.proxy.metrics.auth_failures_total++;
    this.event({ type: 'auth.failed', version: 1, ...this.identityFields(), code, reason, claimed_user: this.claimedUser });
    this.options.logger.info({ session_id: this.id, code, client_addr: this.clientAddr }, 'ssh auth failed');
    if (this.attempts >= this.options.listener.max_auth_attempts) {
      return this.refuse('GW_ERR_SSH_AUTH_METHOD', 'too many failed login attempts', 'auth_failed', DISCONNECT.NO_MORE_AUTH_METHODS_AVAILABLE);
    }
    ctx.reject(this.methods());
  }

  private connectUpstream(ctx: AuthContext): void {
    const o = this.options;
    const t = this.target;
    const conn = new Client();
    this.upstream = conn;
    let hostKeyRefused = false;
    const fail = (code: GatewayErrorCode, message: string): void => {
      conn.removeAllListeners('ready');
      conn.end();
      if (this.state !== SshState.Connecting) return;
      ctx.reject([]);
      this.refuse(code, message, 'upstream_error', DISCONNECT.BY_APPLICATION, 'protocol', 's2c');
    };
    conn.on('error', (err: Error & { level?: string }) => {
      if (hostKeyRefused) return fail('GW_ERR_SSH_HOST_KEY_MISMATCH', `target "${t.id}" presented a host key that is not pinned`);
      // The target's own words go to the operator log only; the client gets the code.
      o.logger.warn({ session_id: this.id, target_id: t.id, level: err.level, err: err.message }, 'ssh target connection failed');
      if (err.level === 'client-authentication') return fail('GW_ERR_UPSTREAM_AUTH', `could not log in to target "${t.id}"`);
      fail('GW_ERR_UPSTREAM_CONNECT', `could not reach target "${t.id}"`);
    });
    conn.on('close', () => {
      if (this.state === SshState.Connecting) fail('GW_ERR_UPSTREAM_CONNECT', `target "${t.id}" closed the connection`);
      else if (this.state === SshState.Open) this.end('target_closed', 'target closed the connection');
    });
    conn.on('ready', () => {
      if (this.state !== SshState.Connecting) return void conn.end();
      ctx.accept();
    });
    void (async () => {
      try {
        const key = t.private_key ? (await resolveSecret(t.private_key, o.env)).reveal() : undefined;
        const passphrase = t.passphrase ? (await resolveSecret(t.passphrase, o.env)).reveal() : undefined;
        const password = t.password ? (await resolveSecret(t.password, o.env)).reveal() : undefined;
        if (this.state !== SshState.Connecting) return;
        conn.connect({
          host: t.host,
          port: t.port,
          username: t.user,
          ...(key ? { privateKey: key } : {}),
          ...(passphrase ? { passphrase } : {}),
          ...(password ? { password } : {}),
          // The agent serves only agent forwarding (forwarding.ts); the explicit method list keeps
          // ssh2 from trying it as a login method.
          agent: new AgentBridge(() => (this.state === SshState.Open ? this.forwarding : undefined)),
          authHandler: ['none', ...(password ? ['password' as const] : []), ...(key ? ['publickey' as const] : [])],
          readyTimeout: o.listener.upstream_connect_timeout_ms,
          algorithms: { serverHostKey: hostKeyAlgorithms(t.pinned) as never },
          hostVerifier: (blob: Buffer) => {
            const ok = isPinned(t.pinned, blob);
            if (!ok) hostKeyRefused = true;
            return ok;
          },
        });
      } catch (err) {
        // SecretRef errors name the ref, never a value.
        fail('GW_ERR_SECRET_UNRESOLVED', `credentials of target "${t.id}" are unavailable`);
        o.logger.error({ session_id: this.id, target_id: t.id, err: (err as Error).message }, 'ssh target credentials unavailable');
      }
    })();
  }

  private onReady(): void {
    if (this.state !== SshState.Connecting) return;
    const refusal = this.proxy.auditRefusal();
    if (refusal) return this.refuse('GW_ERR_AUDIT_UNAVAILABLE', refusal, 'refused', DISCONNECT.SERVICE_NOT_AVAILABLE);
    this.state = SshState.Open;
    this.started = true;
    clearTimeout(this.authTimer);
    this.proxy.metrics.sessions_started_total++;
    this.event({ type: 'session.started', version: 1, ...this.identityFields(), tls: true, upstream_tls: true, ...(this.info.header?.versions?.software ? { client_app: String(this.info.header.versions.software).slice(0, 200) } : {}) });
    this.options.logger.info({ session_id: this.id, sub: this.identity?.sub, target_id: this.target.id }, 'ssh session started');
    this.client.on('session', (accept, reject) => {
      if (!this.channelSlot('session')) return reject();
      const ch = new SessionChannel(this, this.nextChannel++, accept());
      this.channels.add(ch);
    });
    const f = this.forwarding;
    this.client.on('tcpip', (accept, reject, info) => f.onDirectTcpip(accept, reject, info));
    this.client.on('openssh.streamlocal', (_accept, reject, info) => {
      reject();
      this.event({ type: 'ssh.channel', version: 1, action: 'refused', kind: 'direct-streamlocal@openssh.com', host: String(info.socketPath).slice(0, 1024), code: 'GW_ERR_SSH_FORWARDING_REFUSED', reason: 'stream-local forwarding is not supported by the gateway' });
    });
    this.client.on('request', (accept, reject, name, info) => f.onGlobalRequest(accept as ((port?: number) => void) | undefined, reject, name, info as never));
    const up = this.upstream!;
    up.on('tcp connection', (info, accept, reject) => f.onTargetTcpConnection(info, accept, reject));
    up.on('x11', (info, accept, reject) => f.onTargetX11(info, accept, reject));
  }

  /** Count live channels (session and forwarded); refuse (with an event) past max_channels_per_session. */
  channelSlot(kind: string): boolean {
    if (this.channels.size + this.forwarding.open < this.options.listener.max_channels_per_session) return true;
    this.proxy.metrics.channels_refused_total++;
    this.event({ type: 'ssh.channel', version: 1, action: 'refused', kind, code: 'GW_ERR_SSH_CHANNEL_LIMIT', reason: `the connection already holds ${this.options.listener.max_channels_per_session} channels` });
    return false;
  }

  /** CHANNEL_CLOSE for a session channel that never ran anything (ssh2's Session has no close()). */
  closeUnstarted(raw: import('ssh2').Session): void {
    const c = this.client as unknown as { _protocol?: { channelClose(id: number): void } };
    const info = (raw as unknown as { _chanInfo?: { outgoing: { id: number; state: string } } })._chanInfo;
    if (!c._protocol || !info || info.outgoing.state !== 'open') return;
    info.outgoing.state = 'closing';
    try {
      c._protocol.channelClose(info.outgoing.id);
    } catch {
      /* connection already gone */
    }
  }

  channelClosed(ch: SessionChannel): void {
    this.channels.delete(ch);
  }

  // ---- ending --------------------------------------------------------------------------------

  /** Record the refusal, tell the client with a DISCONNECT reason code, end. */
  refuse(code: GatewayErrorCode, message: string, reason: EndReason, disconnect: number, kind: 'auth' | 'protocol' = 'protocol', direction: 'c2s' | 's2c' = 'c2s'): void {
    if (this.state === SshState.Closed) return;
    if (kind === 'auth') {
      this.proxy.metrics.auth_failures_total++;
      this.event({ type: 'auth.failed', version: 1, ...this.identityFields(), code, reason: message, ...(this.claimedUser !== undefined ? { claimed_user: this.claimedUser } : {}) });
    } else {
      this.proxy.metrics.refused_total++;
      this.event({ type: 'protocol.refused', version: 1, ...this.identityFields(), code, reason: message, direction });
    }
    this.options.logger.info({ session_id: this.id, code, client_addr: this.clientAddr }, 'ssh session refused');
    disconnect_(this.client, disconnect);
    this.end(reason, `${code}: ${message}`);
  }

  shutdown(): void {
    if (this.state === SshState.Closed) return;
    this.event({ type: 'protocol.refused', version: 1, ...this.identityFields(), code: 'GW_ERR_SHUTDOWN', reason: 'the gateway is shutting down', direction: 's2c' });
    disconnect_(this.client, DISCONNECT.BY_APPLICATION);
    this.end('gateway_shutdown', 'GW_ERR_SHUTDOWN: the gateway is shutting down');
  }

  auditUnavailable(): void {
    this.refuse('GW_ERR_AUDIT_UNAVAILABLE', 'audit log unavailable', 'refused', DISCONNECT.SERVICE_NOT_AVAILABLE);
  }

  setSinkPressure(on: boolean): void {
    // Stop reading both sockets while the event log is behind (audit data is never dropped): SSH
    // flow control then holds both peers back through their channel windows.
    for (const peer of [this.client, this.upstream]) {
      const sock = (peer as unknown as { _sock?: import('node:net').Socket } | undefined)?._sock;
      if (!sock) continue;
      if (on) sock.pause();
      else sock.resume();
    }
  }

  end(reason: EndReason, detail: string): void {
    if (this.state === SshState.Closed) return;
    for (const ch of [...this.channels]) ch.close(this.clientGone ? 'client' : 'session');
    this.forwarding.closeAll(this.clientGone);
    this.state = SshState.Closed;
    clearTimeout(this.authTimer);
    const c = this.recorder.counts;
    this.proxy.metrics.bytes_c2s_total += c.bytes_c2s;
    this.proxy.metrics.bytes_s2c_total += c.bytes_s2c;
    try {
      this.recorder.event({
        type: 'session.ended',
        version: 1,
        ...this.identityFields(),
        reason: this.started || reason !== 'client_closed' ? reason : 'client_closed',
        detail,
        duration_us: Math.max(0, Math.round((performance.now() - this.startedAt) * 1000)),
        ...c,
      });
    } catch (err) {
      this.options.logger.error({ session_id: this.id, err: (err as Error).message }, 'could not record session.ended');
    }
    this.upstream?.end();
    try {
      this.client.end();
    } catch {
      /* already gone */
    }
    setTimeout(() => (this.client as unknown as { _sock?: { destroy(): void } })._sock?.destroy(), 1000).unref();
    this.proxy.sessions.delete(this);
    this.options.logger.info({ session_id: this.id, reason, ...c }, 'ssh session ended');
    this.resolveClosed();
  }
}

/**
 * SSH_MSG_DISCONNECT with a specific reason code. ssh2's public `end()` always says BY_APPLICATION;
 * its protocol object sends any RFC 4253 reason, so we reach for it (one place, guarded).
 */
function disconnect_(client: Connection, reason: number): void {
  const c = client as unknown as { _protocol?: { disconnect(r: number): void }; _sock?: { writable?: boolean; end(): void } };
  try {
    if (c._protocol && c._sock?.writable) {
      c._protocol.disconnect(reason);
      c._sock.end();
      return;
    }
  } catch {
    /* fall through */
  }
  try {
    client.end();
  } catch {
    /* already gone */
  }
}

export { OPEN_FAILURE };
