/**
 * The PostgreSQL session state machine of the gateway: states and events as enums, transitions as
 * data, a pure `transition`. Input-driven events are checked with `canTransition` first (a client
 * sending SSLRequest twice is a protocol error answered with 08P01, not a crash); `transition`
 * throws on an illegal move because reaching one means a gateway bug.
 */

export enum PgState {
  /** Connected; waiting for the first startup-phase packet (SSLRequest, GSSENCRequest, StartupMessage, CancelRequest). */
  AwaitingStartup = 'awaiting_startup',
  /** Answered 'S' to SSLRequest; TLS handshake with the client in progress. */
  TlsHandshake = 'tls_handshake',
  /** TLS established; waiting for the StartupMessage (no second SSLRequest/GSSENCRequest allowed). */
  AwaitingStartupTls = 'awaiting_startup_tls',
  /** AuthenticationCleartextPassword sent; waiting for the PasswordMessage carrying the OIDC token. */
  AwaitingToken = 'awaiting_token',
  /** Token received; the TokenVerifier is checking it. Client input is paused. */
  VerifyingToken = 'verifying_token',
  /** Caller authenticated; connecting to the target (TCP, then TLS per target). */
  ConnectingUpstream = 'connecting_upstream',
  /** Connected; the gateway logs in to the target with the target's credentials. */
  AuthenticatingUpstream = 'authenticating_upstream',
  /** AuthenticationOk sent to the client; every message both ways is relayed and recorded. */
  Relaying = 'relaying',
  /** Ended (session.ended recorded); no more input is processed. */
  Closed = 'closed',
}

export enum PgEvent {
  /** Client sent SSLRequest and the gateway answered 'S'. */
  SslAccepted = 'ssl_accepted',
  /** Client sent SSLRequest or GSSENCRequest and the gateway answered 'N'. */
  EncryptionDeclined = 'encryption_declined',
  /** TLS handshake with the client completed. */
  TlsEstablished = 'tls_established',
  /** A valid StartupMessage for a known target arrived; the gateway asked for the token. */
  StartupAccepted = 'startup_accepted',
  /** The PasswordMessage (token) arrived. */
  TokenReceived = 'token_received',
  /** The token verified and its sub matches the startup user. */
  TokenAccepted = 'token_accepted',
  /** TCP (and TLS) to the target is up; the upstream StartupMessage was sent. */
  UpstreamConnected = 'upstream_connected',
  /** The target sent AuthenticationOk; the client is told AuthenticationOk. */
  UpstreamAuthenticated = 'upstream_authenticated',
  /** Any end: refusal, error, either side closing, timeout, shutdown, or a CancelRequest handled. */
  Close = 'close',
}

const S = PgState;
const E = PgEvent;

export const TRANSITIONS: Readonly<Record<PgState, Partial<Record<PgEvent, PgState>>>> = {
  [S.AwaitingStartup]: {
    [E.SslAccepted]: S.TlsHandshake,
    // After 'N' the client may try the other encryption or send the StartupMessage in clear.
    [E.EncryptionDeclined]: S.AwaitingStartup,
    [E.StartupAccepted]: S.AwaitingToken,
    [E.Close]: S.Closed,
  },
  [S.TlsHandshake]: { [E.TlsEstablished]: S.AwaitingStartupTls, [E.Close]: S.Closed },
  [S.AwaitingStartupTls]: { [E.StartupAccepted]: S.AwaitingToken, [E.Close]: S.Closed },
  [S.AwaitingToken]: { [E.TokenReceived]: S.VerifyingToken, [E.Close]: S.Closed },
  [S.VerifyingToken]: { [E.TokenAccepted]: S.ConnectingUpstream, [E.Close]: S.Closed },
  [S.ConnectingUpstream]: { [E.UpstreamConnected]: S.AuthenticatingUpstream, [E.Close]: S.Closed },
  [S.AuthenticatingUpstream]: { [E.UpstreamAuthenticated]: S.Relaying, [E.Close]: S.Closed },
  [S.Relaying]: { [E.Close]: S.Closed },
  [S.Closed]: {},
};

export class IllegalTransition extends Error {
  constructor(
    readonly state: PgState,
    readonly event: PgEvent,
  ) {
    super(`illegal pg session transition: ${event} in state ${state}`);
    this.name = 'IllegalTransition';
  }
}

export function canTransition(state: PgState, event: PgEvent): boolean {
  return TRANSITIONS[state][event] !== undefined;
}

export function transition(state: PgState, event: PgEvent): PgState {
  const next = TRANSITIONS[state][event];
  if (next === undefined) throw new IllegalTransition(state, event);
  return next;
}

/** States in which the client is still in the startup phase (packets without a type byte). */
export function inStartupPhase(state: PgState): boolean {
  return state === S.AwaitingStartup || state === S.AwaitingStartupTls;
}
