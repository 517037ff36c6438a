/**
 * One client connection through the PostgreSQL gateway: startup (TLS, GSSENC refusal, cancel),
 * token authentication, upstream login, then the relay. Driven by the state machine in session.ts;
 * framing by codec.ts; upstream login by upstream-auth.ts.
 *
 * Recorded stream (what frame events hold, per direction): exactly the bytes the client sent and
 * received from the first message after the client's PasswordMessage on. s2c therefore starts with
 * the gateway's AuthenticationOk, then the target's ParameterStatus/BackendKeyData (the gateway-issued
 * key, as the client saw it)/ReadyForQuery…; c2s starts with the client's first query. The startup
 * packets and the PasswordMessage (a bearer token) are never frames: the startup facts are in
 * session.started, the token in nobody's log. The gateway↔target login (SCRAM/md5) is not recorded.
 *
 * Relay: each chunk is parsed (messages recorded as views into it) and then written on whole; no
 * per-message copies, no waiting for the log. Backpressure: a full peer write buffer pauses the
 * source until 'drain'; EventSink pressure pauses both sides.
 */
import type net from 'node:net';
import tls from 'node:tls';
import { randomUUID } from 'node:crypto';
import type { EndReason } from '@vigil/schemas';
import type { VerifiedIdentity } from '@vigil/identity/types';
import { SessionRecorder } from '../../recorder/recorder.ts';
import { GATEWAY_ERRORS, isGatewayError, type GatewayErrorCode } from '../../errors.ts';
import { resolveSecret, type Secret } from '../../secrets.ts';
import type { TargetConfig } from '../../config.ts';
import * as codec from './codec.ts';
import { FORWARDED_PARAMS, FRONTEND_TYPE_VALID, GATEWAY_OWNED_PARAMS, TYPE_LETTER } from './messages.ts';
import { PgEvent, PgState, canTransition, inStartupPhase, transition } from './session.ts';
import { UpstreamAuth, type UpstreamAuthStep } from './upstream-auth.ts';
import { evaluate, type CompiledPolicy, type LimitValue, type SessionLimits } from '../../policy/index.ts';
import { PgEnforcer, type ApprovalAnswer, type ApprovalAsk, type BlockReport } from './enforce.ts';
import { SessionHolds, notApprovedMessage } from '../../approvals/session-hold.ts';
import { PgMaskStream, type MaskReport } from './mask-stream.ts';
import { dial, sendCancel, type DialTarget, type ReusedReads } from './upstream.ts';
import type { SessionStarted } from '@vigil/schemas';
import { tokenFailure } from './token.ts';
import type { PgProxy, PgProxyOptions } from './proxy.ts';

/** PostgreSQL reads PasswordMessage with a 64 KiB cap (PG_MAX_AUTH_TOKEN_LENGTH); tokens fit well. */
const MAX_AUTH_MESSAGE_BYTES = 65_540;
const SOCKET_END_GRACE_MS = 5000;
const TERMINATE = 0x58; // 'X'
const DATA_ROW = 0x44; // 'D'
/** Size of a session's reused upstream read buffer (libuv's own read size). */
const READ_BUFFER_BYTES = 64 * 1024;
const validFrontend = (t: number): boolean => FRONTEND_TYPE_VALID[t] === 1;
const clip = (s: string): string => (s.length > 100 ? `${s.slice(0, 100)}…` : s);

type Side = 'client' | 'upstream';
type IdentityAndTarget = Pick<
  SessionStarted,
  'client_addr' | 'sub' | 'groups' | 'issuer' | 'actor_kind' | 'target_id' | 'protocol' | 'target_addr' | 'db_user' | 'db_name'
>;
type EventKind = 'protocol' | 'auth' | 'none';

export class PgSession {
  readonly id = randomUUID();
  readonly closed: Promise<void>;
  private markClosed!: () => void;
  private state = PgState.AwaitingStartup;
  private client: net.Socket;
  private upstream: net.Socket | undefined;
  private readonly recorder: SessionRecorder;
  private readonly startedAt = performance.now();
  private readonly clientAddr: string;
  private readonly startup: codec.StartupReader;
  private readonly c2s = new codec.MessageReader({ maxFrameBytes: MAX_AUTH_MESSAGE_BYTES, validType: validFrontend });
  private readonly s2c: codec.MessageReader;
  private upstreamAuth: UpstreamAuth | undefined;
  /** Client messages that arrived after the PasswordMessage, before relaying began. */
  private early: Buffer[] = [];
  private clientTls = false;
  private upstreamTls = false;
  private target: TargetConfig | undefined;
  private dbName: string | undefined;
  private claimedUser: string | undefined;
  private clientApp: string | undefined;
  private forwardParams = new Map<string, string>();
  /** Startup parameters the client sent that are not forwarded (named in session.started). */
  private droppedParams: string[] = [];
  private identity: VerifiedIdentity | undefined;
  private cancelPid: number | undefined;
  /** Until the first ReadyForQuery (and a clean chunk boundary) s2c is handled message by message, to swap BackendKeyData. */
  private s2cPerMessage = true;
  /**
   * Bytes of a message that straddled the PasswordMessage were read (and held) before relaying
   * began; until the reader is at a message boundary again, c2s is forwarded message by message
   * so the target gets exactly the bytes that are recorded — never a chunk without its head.
   */
  private c2sPerMessage = false;
  /** Bytes of the s2c message currently held by the reader that the fast path already forwarded. */
  private s2cForwarded = 0;
  private sawReady = false;
  private readonly pauses: Record<Side, Set<string>> = { client: new Set(), upstream: new Set() };
  private readonly draining: Record<Side, boolean> = { client: false, upstream: false };
  private readonly authTimer: NodeJS.Timeout;
  private ended = false;
  private clientError: string | undefined;
  private clientTerminated = false;
  /** Inline policy enforcement (enforce.ts); undefined without a policy file: then nothing is parsed. */
  private enforcer: PgEnforcer | undefined;
  /** Client messages that arrived while a statement waits for approval (forwarded, in order, after it). */
  private heldQueue: [number, Buffer][] | undefined;
  /** Session limits of the policy, evaluated when the relay begins (policy/compile.ts SessionLimits). */
  private limits: SessionLimits = {};
  private rowsReturned = 0;
  private durationTimer: NodeJS.Timeout | undefined;
  /** Approval waits of this session (one at a time: the client is paused meanwhile). */
  private holds: SessionHolds | undefined;
  /** Inline masking (mask-stream.ts); with a policy file only. */
  private masker: PgMaskStream | undefined;

  constructor(
    private readonly proxy: PgProxy,
    socket: net.Socket,
  ) {
    const o = proxy.options;
    this.closed = new Promise((r) => (this.markClosed = r));
    this.client = socket;
    this.clientAddr = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.recorder = new SessionRecorder(o.sink, this.id, { gateway_id: o.gatewayId, gateway_version: o.gatewayVersion });
    this.startup = new codec.StartupReader(o.listener.max_startup_bytes);
    this.s2c = new codec.MessageReader({ maxFrameBytes: o.listener.max_frame_bytes });
    socket.setNoDelay(true);
    this.attachClient(socket);
    this.authTimer = setTimeout(() => this.refuse('GW_ERR_AUTH_TIMEOUT', 'authentication timeout', 'timeout'), o.listener.auth_timeout_ms);
  }

  // ---- plumbing ------------------------------------------------------------------------------

  private attachClient(socket: net.Socket): void {
    socket.on('data', this.onClientData);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.clientError = err.code ?? 'error';
      if (this.state === PgState.TlsHandshake) this.refuse('GW_ERR_TLS_HANDSHAKE', `TLS handshake failed (${this.clientError})`, 'refused');
    });
    socket.on('close', () =>
      this.end('client_closed', this.clientError ? `client socket error ${this.clientError}` : this.clientTerminated ? 'client sent Terminate' : 'client closed the connection'),
    );
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      // A gateway bug must cost this session only, never the process or other sessions.
      this.proxy.options.logger.error({ session_id: this.id, err: (err as Error).message, state: this.state }, 'pg session internal error');
      this.refuse('GW_ERR_PROTOCOL', 'internal gateway error', 'protocol_error', 'none');
    }
  }

  private move(event: PgEvent): void {
    this.state = transition(this.state, event);
  }

  private socketOf(side: Side): net.Socket | undefined {
    return side === 'client' ? this.client : this.upstream;
  }

  private pause(side: Side, reason: string): void {
    this.pauses[side].add(reason);
    this.socketOf(side)?.pause();
  }

  private resume(side: Side, reason: string): void {
    this.pauses[side].delete(reason);
    if (this.pauses[side].size === 0 && !this.ended) this.socketOf(side)?.resume();
  }

  /** Write toward `dest`; if its buffer is full, pause the other side until it drains. */
  private write(dest: Side, data: Buffer): void {
    const sock = this.socketOf(dest);
    if (!sock || sock.destroyed) return;
    if (!sock.write(data) && !this.draining[dest]) {
      this.draining[dest] = true;
      const source: Side = dest === 'client' ? 'upstream' : 'client';
      this.pause(source, 'peer');
      sock.once('drain', () => {
        this.draining[dest] = false;
        this.resume(source, 'peer');
      });
    }
  }

  setSinkPressure(on: boolean): void {
    for (const side of ['client', 'upstream'] as const) on ? this.pause(side, 'sink') : this.resume(side, 'sink');
  }

  private checkMemory(): void {
    const held =
      this.startup.buffered + this.c2s.buffered + this.s2c.buffered + this.client.writableLength + (this.upstream?.writableLength ?? 0);
    const max = this.proxy.options.listener.max_buffered_bytes_per_session;
    if (held > max) this.refuse('GW_ERR_SESSION_MEMORY', `session buffered ${held} bytes, above max_buffered_bytes_per_session`, 'protocol_error');
  }

  private identityFields(): IdentityAndTarget {
    const t = this.target;
    const id = this.identity;
    return {
      client_addr: this.clientAddr,
      ...(id ? { sub: id.sub, groups: id.groups, issuer: id.issuer, actor_kind: id.actor_kind } : {}),
      ...(t ? { target_id: t.id, protocol: 'postgres' as const, target_addr: `${t.host}:${t.port}`, db_user: t.user } : {}),
      ...(this.dbName !== undefined ? { db_name: this.dbName } : {}),
    };
  }

  private dialTarget(t: TargetConfig): DialTarget {
    const ca = this.proxy.options.targetCa.get(t.id);
    return { id: t.id, host: t.host, port: t.port, tls: t.tls?.mode ?? 'disable', ...(ca ? { ca } : {}) };
  }

  // ---- ending --------------------------------------------------------------------------------

  /**
   * Refuse/terminate with a FATAL ErrorResponse (when the client can still parse one), the
   * matching event, then end. Never includes secrets: messages are built from codes and names.
   */
  private refuse(code: GatewayErrorCode, message: string, reason: EndReason, event: EventKind = 'protocol', direction: 'c2s' | 's2c' = 'c2s'): void {
    if (this.ended) return;
    const sqlstate: string = (GATEWAY_ERRORS[code] as { sqlstate?: string }).sqlstate ?? '08P01';
    // No ErrorResponse mid-TLS-handshake (the client expects TLS records) nor after a partial
    // message was forwarded (it would land inside that message).
    const canSpeak = this.state !== PgState.TlsHandshake && !(this.state === PgState.Relaying && !this.s2cPerMessage && this.s2c.buffered > 0);
    if (event === 'auth') {
      this.proxy.metrics.auth_failures_total++;
      this.recorder.event({ type: 'auth.failed', version: 1, ...this.identityFields(), code, reason: message, ...(this.claimedUser !== undefined ? { claimed_user: this.claimedUser } : {}) });
    } else if (event === 'protocol') {
      this.proxy.metrics.refused_total++;
      this.recorder.event({ type: 'protocol.refused', version: 1, ...this.identityFields(), code, reason: message, direction, ...(canSpeak ? { sqlstate } : {}) });
    }
    if (canSpeak && !this.client.destroyed) {
      const e = codec.errorResponse({ severity: 'FATAL', code: sqlstate, message });
      if (this.state === PgState.Relaying) this.recorder.frame('s2c', 'E', e);
      this.client.write(e);
    }
    this.proxy.options.logger.info({ session_id: this.id, code, sqlstate, client_addr: this.clientAddr }, 'pg session refused');
    this.end(reason, `${code}: ${message}`);
  }

  /** Record session.ended exactly once and close both sockets (flushing what was queued). */
  private end(reason: EndReason, detail: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.state === PgState.Relaying) this.recordPartials();
    this.state = canTransition(this.state, PgEvent.Close) ? transition(this.state, PgEvent.Close) : PgState.Closed;
    clearTimeout(this.authTimer);
    if (this.cancelPid !== undefined) this.proxy.cancels.release(this.cancelPid);
    this.holds?.settle('closed');
    clearTimeout(this.durationTimer);
    const c = this.recorder.counts;
    this.proxy.metrics.bytes_c2s_total += c.bytes_c2s;
    this.proxy.metrics.bytes_s2c_total += c.bytes_s2c;
    try {
      this.recorder.event({
        type: 'session.ended',
        version: 1,
        ...this.identityFields(),
        reason,
        detail,
        duration_us: Math.max(0, Math.round((performance.now() - this.startedAt) * 1000)),
        ...c,
      });
    } catch (err) {
      this.proxy.options.logger.error({ session_id: this.id, err: (err as Error).message }, 'could not record session.ended');
    }
    for (const sock of [this.client, this.upstream]) {
      if (!sock || sock.destroyed) continue;
      // Keep reading (and discarding) so the peer's FIN is seen and 'close' fires.
      sock.removeAllListeners('data');
      sock.on('data', () => {});
      sock.resume();
      sock.end();
      setTimeout(() => sock.destroy(), SOCKET_END_GRACE_MS).unref();
    }
    this.proxy.sessions.delete(this);
    this.proxy.options.logger.info({ session_id: this.id, reason, ...c }, 'pg session ended');
    this.markClosed();
  }

  /**
   * A session can end in the middle of a message (peer closed, target crashed, refusal). In chunk
   * mode those bytes were already forwarded, so the other side saw them: record them as a frame
   * with msg_type 'partial' — every byte that crossed the gateway is in the recording.
   */
  private recordPartials(): void {
    if (!this.c2sPerMessage) {
      const held = this.c2s.takeHeld();
      if (held) this.recorder.frame('c2s', 'partial', held);
    }
    if (this.s2cForwarded > 0) {
      const held = this.s2c.takeHeld();
      if (held) this.recorder.frame('s2c', 'partial', held.subarray(0, this.s2cForwarded));
      this.s2cForwarded = 0;
    }
  }

  shutdown(): void {
    this.refuse('GW_ERR_SHUTDOWN', 'terminating connection due to gateway shutdown', 'gateway_shutdown', 'none', 's2c');
  }

  /** The event log failed for good and the gateway is fail-closed: end this session now. */
  auditUnavailable(): void {
    if (this.ended) return;
    this.refuse('GW_ERR_AUDIT_UNAVAILABLE', 'terminating connection: the audit log is unavailable', 'refused', 'none', 's2c');
  }

  destroySockets(): void {
    this.client.destroy();
    this.upstream?.destroy();
  }

  // ---- client side -------------------------------------------------------------------------

  private readonly onClientData = (chunk: Buffer): void =>
    this.guard(() => {
      if (this.ended) return;
      if (inStartupPhase(this.state)) this.onStartupBytes(chunk);
      else if (this.state === PgState.Relaying) this.relayC2S(chunk);
      else {
        const err = this.c2s.push(chunk, this.onPreRelayMessage);
        if (err) this.refuse(err.code, err.message, 'protocol_error');
      }
      if (!this.ended) this.checkMemory();
    });

  private onStartupBytes(chunk: Buffer): void {
    let got: { packet: Buffer; rest: Buffer } | undefined;
    let packet: codec.StartupPacket;
    try {
      got = this.startup.push(chunk);
      if (!got) return;
      packet = codec.parseStartupPacket(got.packet);
    } catch (err) {
      if (err instanceof codec.ProtocolViolation) return this.refuse(err.code, err.message, 'refused');
      throw err;
    }
    const inTls = this.state === PgState.AwaitingStartupTls;
    if (packet.kind === 'ssl' || packet.kind === 'gssenc') {
      if (inTls) return this.refuse('GW_ERR_PROTOCOL', 'encryption requested twice', 'refused');
      // Bytes after the request would be processed as if they had been encrypted (CVE-2021-23214).
      if (got.rest.length > 0) return this.refuse('GW_ERR_PROTOCOL', 'received unencrypted data after SSL request', 'refused');
      const context = this.proxy.options.secureContext;
      if (packet.kind === 'gssenc' || !context) {
        this.move(PgEvent.EncryptionDeclined);
        this.client.write(codec.SSL_NO);
        return;
      }
      return this.upgradeTls(context);
    }
    if (packet.kind === 'cancel') return this.onCancel(packet.pid, packet.secret);
    this.onStartup(packet.minor, packet.params, got.rest);
  }

  private upgradeTls(context: tls.SecureContext): void {
    this.move(PgEvent.SslAccepted);
    const raw = this.client;
    raw.removeListener('data', this.onClientData);
    raw.write(codec.SSL_YES);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    secure.on('error', () => {});
    this.client = secure;
    this.attachClient(secure);
    if (this.pauses.client.size > 0) secure.pause();
    secure.once('secure', () =>
      this.guard(() => {
        if (this.ended) return;
        this.clientTls = true;
        this.move(PgEvent.TlsEstablished);
      }),
    );
  }

  private onStartup(minor: number, params: Map<string, string>, rest: Buffer): void {
    const o = this.proxy.options;
    const user = params.get('user')!;
    this.claimedUser = user;
    this.clientApp = params.get('application_name');
    if (o.listener.require_tls && !this.clientTls) {
      return this.refuse('GW_ERR_TLS_REQUIRED', 'TLS is required by this gateway (connect with sslmode=require)', 'refused');
    }
    const refusal = this.proxy.auditRefusal();
    if (refusal) return this.refuse('GW_ERR_AUDIT_UNAVAILABLE', refusal, 'refused');
    if (this.proxy.sessions.size > o.listener.max_sessions) {
      return this.refuse('GW_ERR_TOO_MANY_SESSIONS', `sorry, too many clients already (the gateway allows ${o.listener.max_sessions})`, 'refused');
    }
    if (params.has('replication')) return this.refuse('GW_ERR_STARTUP_INVALID', 'replication connections are not supported by the gateway', 'refused');
    const database = params.get('database') || user;
    const slash = database.indexOf('/');
    const targetId = slash < 0 ? database : database.slice(0, slash);
    const target = o.targets.get(targetId);
    if (!target) {
      return this.refuse('GW_ERR_UNKNOWN_TARGET', `target "${clip(targetId)}" is not configured on this gateway (database is "target" or "target/dbname")`, 'refused');
    }
    this.target = target;
    this.dbName = slash < 0 ? target.database : database.slice(slash + 1);
    if (this.dbName.length === 0) return this.refuse('GW_ERR_UNKNOWN_TARGET', `no database name after "${clip(targetId)}/"`, 'refused');
    const ignored: string[] = [];
    for (const [k, v] of params) {
      if (k.startsWith('_pq_.')) ignored.push(k);
      else if (FORWARDED_PARAMS.has(k)) this.forwardParams.set(k, v);
      else if (!GATEWAY_OWNED_PARAMS.has(k)) this.droppedParams.push(clip(k));
    }
    this.move(PgEvent.StartupAccepted);
    if (minor > 0 || ignored.length > 0) this.client.write(codec.negotiateProtocolVersion(0, ignored));
    this.client.write(codec.authenticationCleartextPassword());
    if (rest.length > 0) this.onClientData(rest);
  }

  private readonly onPreRelayMessage = (type: number, message: Buffer): void => {
    if (this.ended) return;
    if (this.state !== PgState.AwaitingToken) {
      this.early.push(message);
      return;
    }
    if (TYPE_LETTER[type] === 'X') return this.end('client_closed', 'client terminated before authenticating');
    if (TYPE_LETTER[type] !== 'p') return this.refuse('GW_ERR_PROTOCOL', `expected a password message (the OIDC token), got '${TYPE_LETTER[type]}'`, 'refused');
    const token = codec.passwordOf(message);
    if (token === undefined) return this.refuse('GW_ERR_PROTOCOL', 'malformed password message', 'refused');
    this.move(PgEvent.TokenReceived);
    this.c2s.configure({ maxFrameBytes: this.proxy.options.listener.max_frame_bytes });
    this.pause('client', 'auth');
    if (token.length === 0) return this.refuse('GW_ERR_TOKEN_MISSING', 'authentication failed: no token in the password field', 'auth_failed', 'auth');
    // Async from here on; a rejection must still end only this session (and never be unhandled).
    this.authenticate(token).catch((err: unknown) =>
      this.guard(() => {
        throw err;
      }),
    );
  };

  private async authenticate(token: string): Promise<void> {
    const o = this.proxy.options;
    let identity: VerifiedIdentity;
    try {
      identity = await o.verifier.verify(token);
    } catch (err) {
      if (this.ended) return;
      const f = tokenFailure(err);
      if (f.code === 'GW_ERR_IDP_UNAVAILABLE') o.logger.warn({ session_id: this.id, err: (err as Error)?.message }, 'issuer keys unavailable');
      return this.refuse(f.code, `token authentication failed for user "${clip(this.claimedUser!)}": ${f.reason}`, 'auth_failed', 'auth');
    }
    if (this.ended) return;
    if (identity.sub !== this.claimedUser) {
      const reason = `token subject "${clip(identity.sub)}" does not match user "${clip(this.claimedUser!)}"`;
      return this.refuse('GW_ERR_SUB_MISMATCH', `token authentication failed: ${reason}`, 'auth_failed', 'auth');
    }
    this.identity = identity;
    this.move(PgEvent.TokenAccepted);
    await this.connectUpstream();
  }

  private onCancel(pid: number, secret: Buffer): void {
    const o = this.proxy.options;
    const target = this.proxy.cancels.lookup(pid, secret);
    if (!target) {
      // PostgreSQL silently drops unknown keys (answering would be an oracle); we do too, but the
      // attempt is an event.
      this.proxy.metrics.cancels_dropped_total++;
      this.recorder.event({ type: 'protocol.refused', version: 1, client_addr: this.clientAddr, code: 'GW_ERR_CANCEL_UNKNOWN_KEY', reason: 'cancel request with an unknown key dropped', direction: 'c2s' });
      return this.end('refused', 'GW_ERR_CANCEL_UNKNOWN_KEY: cancel request dropped');
    }
    if (target.interrupt?.()) return this.end('client_closed', `cancel request ended the approval wait of session ${target.sessionId}`);
    this.proxy.metrics.cancels_forwarded_total++;
    const t = o.targets.get(target.targetId);
    if (!t) return this.end('refused', 'cancel request for a target no longer configured');
    sendCancel(this.dialTarget(t), target.upstreamPid, target.upstreamSecret, o.listener.upstream_connect_timeout_ms, (err) =>
      o.logger.warn({ session_id: this.id, cancelled_session_id: target.sessionId, err: err.message }, 'cancel forward failed'),
    );
    this.end('client_closed', `cancel request forwarded for session ${target.sessionId}`);
  }

  // ---- upstream ----------------------------------------------------------------------------

  private async connectUpstream(): Promise<void> {
    const o = this.proxy.options;
    const target = this.target!;
    let password: Secret | undefined;
    try {
      password = target.password ? await resolveSecret(target.password, o.env) : undefined;
      if (this.ended) return;
      const { socket, tls: upstreamTls } = await dial(this.dialTarget(target), o.listener.upstream_connect_timeout_ms, this.upstreamReads);
      if (this.ended) {
        socket.destroy();
        return;
      }
      this.upstream = socket;
      this.upstreamTls = upstreamTls;
    } catch (err) {
      if (this.ended) return;
      if (!isGatewayError(err)) throw err;
      o.logger.warn({ session_id: this.id, target_id: target.id, code: err.code, err: err.message }, 'target unavailable');
      // Secret errors name the ref; the caller only needs to know the target is unavailable.
      const message = err.code === 'GW_ERR_SECRET_UNRESOLVED' ? `target "${target.id}" credentials are unavailable` : err.message;
      return this.refuse(err.code === 'GW_ERR_SECRET_UNRESOLVED' ? 'GW_ERR_UPSTREAM_AUTH' : err.code, message, 'upstream_error', 'protocol', 's2c');
    }
    const up = this.upstream;
    up.on('data', (chunk: Buffer) => this.onUpstreamData(chunk)); // TLS targets (reused reads take the rest)
    up.on('close', () => this.guard(() => this.onUpstreamClose()));
    up.on('error', (err: NodeJS.ErrnoException) => o.logger.debug({ session_id: this.id, err: err.code }, 'target socket error'));
    if (this.pauses.upstream.size > 0) up.pause();
    this.move(PgEvent.UpstreamConnected);
    this.upstreamAuth = new UpstreamAuth({ user: target.user, database: this.dbName!, password, params: this.forwardParams, allowed: new Set(target.auth_methods) });
    password = undefined;
    up.write(this.upstreamAuth.startup());
    // Reads that came before the session took the socket (a target must not speak first, but
    // if it does, it is handled as a 'data' listener attached here would have seen it).
    for (const chunk of this.readsBeforeAttach.splice(0)) this.onUpstreamData(chunk);
  }

  private onUpstreamClose(): void {
    if (this.ended) return;
    if (this.state === PgState.Relaying) {
      // After the client's Terminate the target closing first is just the race of two FINs.
      if (this.clientTerminated) return this.end('client_closed', 'client sent Terminate');
      return this.end('target_closed', 'target closed the connection');
    }
    this.refuse('GW_ERR_UPSTREAM_AUTH', `target "${this.target?.id}" closed the connection during login`, 'upstream_error', 'protocol', 's2c');
  }

  /**
   * Upstream reads over plain TCP land in `readBuffer`, reused while nothing keeps a reference to
   * it: the fast path below records (a copy) and writes the chunk on, and only a write the kernel
   * did not take at once (queued in the client socket) keeps it — then the next read gets a new
   * buffer. Everything else (the message-by-message path, the masker, reads before the session
   * took the socket) works on a copy.
   */
  private readBuffer: Buffer | undefined;
  private readsBeforeAttach: Buffer[] = [];
  private readonly upstreamReads: ReusedReads = {
    buffer: () => (this.readBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES)),
    onRead: (bytes) => {
      if (!this.upstream) this.readsBeforeAttach.push(Buffer.from(bytes));
      else this.onUpstreamData(bytes, true);
    },
  };

  private onUpstreamData(chunk: Buffer, borrowed = false): void {
    this.guard(() => {
      if (this.ended) return;
      // Fast path (whole chunks) only when no held bytes are still unforwarded: the head of a
      // message held by the slow path must go out before its tail.
      const unforwarded = this.s2c.buffered - this.s2cForwarded;
      if (this.state === PgState.Relaying && !this.s2cPerMessage && !this.enforcer?.rewriting && !this.masker?.active && this.limits.max_rows === undefined && unforwarded === 0) {
        // A masker that watches (no rule applies yet) may keep messages: it gets a copy.
        if (borrowed && this.masker) {
          chunk = Buffer.from(chunk);
          borrowed = false;
        }
        const err = this.s2c.push(chunk, this.recordS2C, borrowed);
        this.write('client', err ? chunk.subarray(0, err.offset) : chunk);
        if (borrowed && this.client.writableLength > 0) this.readBuffer = undefined; // the client socket holds it now
        this.s2cForwarded = this.s2c.buffered; // the head of an incomplete message went out with the chunk
        if (err) return this.refuse('GW_ERR_UPSTREAM_PROTOCOL', `target sent a bad message: ${err.message}`, 'protocol_error', 'protocol', 's2c');
      } else {
        if (borrowed) chunk = Buffer.from(chunk);
        // Message by message (masking, substitutions, limits): one write for the chunk's messages.
        const client = this.client;
        client.cork();
        let err;
        try {
          err = this.s2c.push(chunk, this.onS2CMessage);
        } finally {
          client.uncork();
        }
        if (err && !this.ended) return this.refuse('GW_ERR_UPSTREAM_PROTOCOL', `target sent a bad message: ${err.message}`, 'protocol_error', 'protocol', 's2c');
        if (this.state === PgState.Relaying && this.sawReady && this.s2c.buffered === 0) this.s2cPerMessage = false;
      }
      if (!this.ended) this.checkMemory();
    });
  }

  private readonly recordS2C = (type: number, message: Buffer): void => {
    this.enforcer?.fromServer(type, message); // not rewriting here: only watches ReadyForQuery/ParameterStatus
    this.masker?.observe(type, message); // no mask rule applies: only follows requests and results
    this.recorder.frame('s2c', TYPE_LETTER[type], message);
  };
  private readonly recordC2S = (type: number, message: Buffer): void => {
    if (type === TERMINATE) this.clientTerminated = true;
    this.recorder.frame('c2s', TYPE_LETTER[type], message);
  };

  private readonly onS2CMessage = (type: number, message: Buffer): void => {
    if (this.ended) return;
    if (this.state === PgState.AuthenticatingUpstream) return this.onUpstreamAuthStep(this.upstreamAuth!.onMessage(type, message));
    if (this.state !== PgState.Relaying) return;
    let out = message;
    if (!this.sawReady) {
      if (TYPE_LETTER[type] === 'K' && message.length >= 13) out = this.issueCancelKey(message);
      else if (TYPE_LETTER[type] === 'Z') this.sawReady = true;
    }
    if (this.enforcer) out = this.enforcer.fromServer(type, out);
    // ---- masking hook (mask-stream.ts): it delivers through deliverS2C, possibly later (catalog wait).
    if (this.masker && this.s2cForwarded === 0) return this.masker.fromServer(type, out);
    this.deliverS2C(out, type, message);
  };

  private readonly deliverS2C = (out: Buffer, type: number, message: Buffer = out): void => {
    if (this.ended) return;
    if (type === DATA_ROW && this.limits.max_rows !== undefined && ++this.rowsReturned > this.limits.max_rows.value) {
      // This row is not delivered (nor recorded): every message before it went out whole, so the
      // client is at a message boundary and can read the FATAL.
      this.s2cPerMessage = true;
      return this.limitReached('max_rows', this.limits.max_rows, this.rowsReturned - 1);
    }
    this.recorder.frame('s2c', TYPE_LETTER[type], out);
    if (this.s2cForwarded > 0) {
      // The fast path already sent this message's head; send only the rest. (It was in flight
      // before any substitution was sent, so it is never a rewritten error.)
      const sent = this.s2cForwarded;
      this.s2cForwarded = 0;
      this.write('client', out === message ? message.subarray(sent) : out);
      return;
    }
    this.write('client', out);
  };

  private issueCancelKey(upstreamKey: Buffer): Buffer {
    const t = this.target!;
    const issued = this.proxy.cancels.issue({
      sessionId: this.id,
      targetId: t.id,
      upstreamPid: upstreamKey.readUInt32BE(5),
      upstreamSecret: Buffer.from(upstreamKey.subarray(9)),
      interrupt: () => this.holds?.settle('cancelled') ?? false,
    });
    this.cancelPid = issued.pid;
    return codec.backendKeyData(issued.pid, issued.secret);
  }

  private onUpstreamAuthStep(step: UpstreamAuthStep): void {
    const o = this.proxy.options;
    switch (step.kind) {
      case 'send':
        return this.write('upstream', step.data);
      case 'wait':
        return;
      case 'fail':
        this.upstreamAuth = undefined;
        // The target's own text (e.g. 'password authentication failed for user "app"') goes to the
        // log for operators; the caller gets the code and SQLSTATE only.
        o.logger.warn({ session_id: this.id, target_id: this.target?.id, code: step.code, upstream_sqlstate: step.upstream?.sqlstate, upstream_message: step.upstream?.message }, 'target login failed');
        return this.refuse(step.code, `could not log in to target "${this.target?.id}": ${step.message}`, 'upstream_error', 'protocol', 's2c');
      case 'ok':
        this.upstreamAuth = undefined;
        return this.beginRelay(step.method);
    }
  }

  private beginRelay(method: string): void {
    const o = this.proxy.options;
    const refusal = this.proxy.auditRefusal();
    if (refusal) return this.refuse('GW_ERR_AUDIT_UNAVAILABLE', refusal, 'refused');
    this.move(PgEvent.UpstreamAuthenticated);
    clearTimeout(this.authTimer);
    this.proxy.metrics.sessions_started_total++;
    this.recorder.event({
      type: 'session.started',
      version: 1,
      ...this.identityFields(),
      tls: this.clientTls,
      upstream_tls: this.upstreamTls,
      ...(this.clientApp !== undefined ? { client_app: this.clientApp } : {}),
      ...(this.forwardParams.size > 0 ? { client_params: Object.fromEntries([...this.forwardParams].map(([k, v]) => [k, clip(v)])) } : {}),
      ...(this.droppedParams.length > 0 ? { dropped_params: this.droppedParams } : {}),
    });
    const policy = o.policy;
    if (policy) {
      // mask_before_log: the statement is recorded masked like the client's frames (mask-log.ts).
      const onBlocked = (r: BlockReport): void =>
        void this.recorder.event({ type: 'policy.blocked', version: 1, ...r, statement: this.masker ? this.masker.statementForLog(r.statement) : r.statement });
      const veto = (a: Parameters<PgMaskStream['writeVeto']>[0]): string | undefined => this.masker?.writeVeto(a);
      this.startLimits(policy.current());
      this.enforcer = new PgEnforcer({
        runtime: policy,
        identity: this.identity!,
        target_id: this.target!.id,
        onBlocked,
        veto,
        ...(o.approvals ? { requestApproval: this.requestApproval } : {}),
      });
      if (o.mask) this.startMasking(policy, o.mask);
    }
    const ok = codec.authenticationOk();
    this.recorder.frame('s2c', 'R', ok);
    this.write('client', ok);
    for (const m of this.early) this.forwardC2S(m[0]!, m);
    this.early = [];
    // With a policy every message is inspected before it is forwarded (a blocked one is substituted).
    this.c2sPerMessage = this.c2s.buffered > 0 || this.enforcer !== undefined;
    this.resume('client', 'auth');
    o.logger.info({ session_id: this.id, sub: this.identity?.sub, target_id: this.target?.id, upstream_auth: method, tls: this.clientTls }, 'pg session started');
  }

  /**
   * Records what the client sent; forwards it, or its substitute when the policy blocks it
   * (enforce.ts). While a statement waits for approval, later messages queue behind it.
   */
  private readonly forwardC2S = (type: number, message: Buffer): void => {
    const logged = this.masker ? this.masker.forLog(type, message) : message;
    // mask_before_log may re-cut COPY data on line boundaries: then several records stand for one message.
    if (Buffer.isBuffer(logged)) this.recordC2S(type, logged);
    else for (const [t, b] of logged) this.recordC2S(t, b);
    if (this.heldQueue !== undefined) this.heldQueue.push([type, message]);
    else this.inspectC2S(type, message);
  };

  /** Forward one client message through the enforcer; false when it is now held. */
  private inspectC2S(type: number, message: Buffer): boolean {
    const out = this.enforcer ? this.enforcer.fromClient(type, message) : message;
    if (Buffer.isBuffer(out)) {
      this.forwardUpstream(type, message, out);
      return true;
    }
    this.heldQueue = [];
    this.pause('client', 'approval');
    out.forward.then(
      (bytes) => this.guard(() => this.releaseHeld(type, message, bytes)),
      (err: Error) => this.guard(() => this.refuse('GW_ERR_PROTOCOL', `approval wait failed: ${err.message}`, 'protocol_error', 'none')),
    );
    return false;
  }

  /** The held message's bytes (original or substitute) go out, then what queued behind it. */
  private releaseHeld(type: number, message: Buffer, bytes: Buffer): void {
    if (this.ended) return;
    const queue = this.heldQueue ?? [];
    this.heldQueue = undefined;
    this.forwardUpstream(type, message, bytes);
    while (queue.length > 0) {
      const [type, message] = queue.shift()!;
      if (!this.inspectC2S(type, message)) {
        this.heldQueue!.push(...queue); // held again: the rest waits behind the new hold
        return;
      }
    }
    this.resume('client', 'approval');
  }

  /** The masker follows requests at the moment they actually go to the target (mask-stream.ts). */
  private forwardUpstream(type: number, message: Buffer, out: Buffer): void {
    this.write('upstream', this.masker ? this.masker.fromClient(type, message, out) : out);
  }

  /** enforce.ts asks: record the request, hold, tell the client, wait, record the outcome (approvals/session-hold.ts). */
  private readonly requestApproval = async (ask: ApprovalAsk): Promise<ApprovalAnswer> => {
    this.holds ??= new SessionHolds({
      service: this.proxy.options.approvals!,
      sessionId: this.id,
      requester: this.identity!.sub,
      fields: () => this.identityFields(),
      record: (input) => this.recorder.sealedEvent(input),
      logger: this.proxy.options.logger,
    });
    // What the chain and the approvers see: the statement as logged (masked under mask_before_log).
    const logged = this.masker ? { ...ask, statement: this.masker.statementForLog(ask.statement) } : ask;
    const r = await this.holds.wait(logged, (id, timeout_s) => {
      this.proxy.metrics.approvals_held_total++;
      this.notify(`Vigil: this statement needs approval under policy rule "${ask.rule_id}" (approval ${id}); waiting up to ${timeout_s} s for a decision`);
    });
    if (r.outcome === 'approved') return { approved: true };
    const sqlstate = r.outcome === 'cancelled' ? '57014' : r.outcome === 'closed' ? '57P01' : '42501';
    return { approved: false, sqlstate, message: notApprovedMessage(r, ask, r.approval_id) };
  };

  /**
   * Session limits: the policy is evaluated once without a statement (rules matching identity,
   * target and time), limits combine to the smallest of each. A max_rows limit makes the target's
   * stream go message by message (the fast path forwards whole chunks and could not stop at a row).
   */
  private startLimits(policy: CompiledPolicy): void {
    this.limits = evaluate(policy, { identity: this.identity!, target_id: this.target!.id, now: new Date() }).limits;
    const d = this.limits.max_duration_s;
    if (d !== undefined) {
      this.durationTimer = setTimeout(() => this.guard(() => this.limitReached('max_duration_s', d, Math.round((performance.now() - this.startedAt) / 1000))), d.value * 1000);
      this.durationTimer.unref();
    }
  }

  private limitReached(limit: 'max_duration_s' | 'max_rows', lv: LimitValue, observed: number): void {
    if (this.ended) return;
    this.recorder.event({ type: 'policy.limit', version: 1, ...this.identityFields(), rule_id: lv.rule_id, limit, value: lv.value, observed });
    const what = limit === 'max_rows' ? `row limit (${lv.value} rows returned)` : `duration limit (${lv.value} s)`;
    this.refuse('GW_ERR_POLICY_LIMIT', `session ${what} of policy rule "${lv.rule_id}" reached: the session is ended`, 'policy_limit', 'none', 's2c');
  }

  /** A NoticeResponse to the client, only at an s2c message boundary (never inside a relayed message). */
  private notify(text: string): void {
    if (this.s2c.buffered > 0 || this.client.destroyed) return;
    const n = codec.noticeResponse(text);
    this.recorder.frame('s2c', 'N', n);
    this.write('client', n);
  }

  // ---- masking (mask-stream.ts) ----------------------------------------------------------------

  private startMasking(policy: NonNullable<PgProxyOptions['policy']>, mask: NonNullable<PgProxyOptions['mask']>): void {
    const t = this.target!;
    const catalog = this.proxy.catalogs.get(t, this.dialTarget(t), this.dbName!);
    this.masker = new PgMaskStream({
      policy,
      mask,
      identity: this.identity!,
      target_id: t.id,
      catalog,
      deliver: this.deliverS2C,
      pauseTarget: (on) => (on ? this.pause('upstream', 'catalog') : this.resume('upstream', 'catalog')),
      onApplied: (r: MaskReport) => this.recorder.event({ type: 'mask.applied', version: 1, ...r }),
      onFatal: (reason) => this.guard(() => this.refuse('GW_ERR_MASKING', reason, 'protocol_error', 'protocol', 's2c')),
      onDdl: () => this.proxy.catalogs.invalidate(t.id),
    });
    // Load the catalog now, so the first result does not wait (failures are retried on demand).
    if (this.masker.active && catalog.current() === undefined) catalog.refresh().catch((err: Error) => this.proxy.options.logger.warn({ session_id: this.id, target_id: t.id, err: err.message }, 'masking catalog load failed'));
  }

  private relayC2S(chunk: Buffer): void {
    if (this.c2sPerMessage) {
      const up = this.upstream;
      up?.cork(); // one write for the chunk's messages
      const err = this.c2s.push(chunk, this.forwardC2S);
      up?.uncork();
      if (err) return this.refuse(err.code, err.message, 'protocol_error');
      if (this.c2s.buffered === 0 && !this.enforcer) this.c2sPerMessage = false;
      return;
    }
    const err = this.c2s.push(chunk, this.recordC2S);
    if (err) {
      if (err.offset > 0) this.write('upstream', chunk.subarray(0, err.offset));
      return this.refuse(err.code, err.message, 'protocol_error');
    }
    this.write('upstream', chunk);
  }
}
