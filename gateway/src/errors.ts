/**
 * Stable error codes of the gateway. The table is the single source of truth for `retriable`
 * (retries read only that flag) and for docs/errors.md (a test checks both are complete).
 * `sqlstate` is what a PostgreSQL client receives when the code ends a pg session.
 */

export interface GatewayErrorInfo {
  retriable: boolean;
  description: string;
  /** SQLSTATE sent to a PostgreSQL client, where the error reaches one. */
  sqlstate?: string;
}

export const GATEWAY_ERRORS = {
  GW_ERR_CONFIG: { retriable: false, description: 'The gateway configuration is invalid (every problem is listed in the message).' },
  GW_ERR_SECRET_UNRESOLVED: { retriable: false, description: 'A SecretRef could not be resolved (env variable unset, file unreadable or empty); the message names the ref, never a value.' },
  GW_ERR_LISTEN: { retriable: false, description: 'The gateway could not listen on the configured host/port (address in use, permission).' },
  GW_ERR_TLS_CONFIG: { retriable: false, description: 'The TLS certificate/key (listener) or CA file (target) could not be loaded.' },
  GW_ERR_STARTUP_INVALID: { retriable: false, sqlstate: '08P01', description: 'Malformed startup packet: bad length, missing protocol version, missing user, bad parameter list.' },
  GW_ERR_PROTOCOL_VERSION: { retriable: false, sqlstate: '08P01', description: 'The client asked for a protocol version other than 3.x.' },
  GW_ERR_PROTOCOL: { retriable: false, sqlstate: '08P01', description: 'A message violated the protocol (invalid type or length, unexpected message, unencrypted data after SSLRequest).' },
  GW_ERR_FRAME_TOO_LARGE: { retriable: false, sqlstate: '08P01', description: 'A message length exceeds max_frame_bytes (or the startup/authentication limit); refused before buffering.' },
  GW_ERR_TLS_REQUIRED: { retriable: false, sqlstate: '28000', description: 'require_tls is set and the client started without TLS.' },
  GW_ERR_TLS_HANDSHAKE: { retriable: false, description: 'The TLS handshake with the client failed.' },
  GW_ERR_UNKNOWN_TARGET: { retriable: false, sqlstate: '3D000', description: 'The startup `database` names no configured target (`target` or `target/dbname`).' },
  GW_ERR_TOKEN_MISSING: { retriable: false, sqlstate: '28P01', description: 'The password message carried no token.' },
  GW_ERR_TOKEN_INVALID: { retriable: false, sqlstate: '28P01', description: 'The token is not a well-formed JWT, or a required claim is missing or invalid.' },
  GW_ERR_TOKEN_SIGNATURE: { retriable: false, sqlstate: '28P01', description: 'The token signature does not verify against the issuer keys.' },
  GW_ERR_TOKEN_ALGORITHM: { retriable: false, sqlstate: '28P01', description: 'The token algorithm is not allowed (e.g. `none`, HS256).' },
  GW_ERR_TOKEN_EXPIRED: { retriable: false, sqlstate: '28P01', description: 'The token has expired.' },
  GW_ERR_TOKEN_NOT_YET_VALID: { retriable: false, sqlstate: '28P01', description: 'The token is not valid yet (nbf/iat in the future).' },
  GW_ERR_TOKEN_ISSUER: { retriable: false, sqlstate: '28P01', description: 'The token issuer is not the configured issuer.' },
  GW_ERR_TOKEN_AUDIENCE: { retriable: false, sqlstate: '28P01', description: 'The token audience does not include the configured audience.' },
  GW_ERR_SUB_MISMATCH: { retriable: false, sqlstate: '28P01', description: 'The token `sub` (or the `sub` an SSH public key is mapped to) differs from the user name the client logged in with.' },
  GW_ERR_IDP_UNAVAILABLE: { retriable: true, sqlstate: '28000', description: 'The issuer keys (JWKS) could not be fetched; the token could not be checked.' },
  GW_ERR_AUTH_TIMEOUT: { retriable: true, sqlstate: '08006', description: 'The client did not complete authentication within auth_timeout_ms.' },
  GW_ERR_UPSTREAM_CONNECT: { retriable: true, sqlstate: '08001', description: 'The target could not be reached within upstream_connect_timeout_ms (refused, unreachable, timeout).' },
  GW_ERR_UPSTREAM_TLS: { retriable: false, sqlstate: '08001', description: 'TLS to the target failed: it refused SSLRequest, or its certificate did not verify.' },
  GW_ERR_UPSTREAM_AUTH: { retriable: false, sqlstate: '28000', description: "The target rejected the gateway's credentials, or asked for an unsupported method." },
  GW_ERR_UPSTREAM_PROTOCOL: { retriable: false, sqlstate: '08P01', description: 'The target sent a malformed, oversized or unexpected message.' },
  GW_ERR_AUDIT_UNAVAILABLE: { retriable: true, sqlstate: '57P03', description: 'fail_closed is set and the event log cannot make events durable; new sessions are refused.' },
  GW_ERR_TOO_MANY_SESSIONS: { retriable: true, sqlstate: '53300', description: 'The gateway already holds max_sessions connections (authenticated or not); the new one is refused.' },
  GW_ERR_SESSION_MEMORY: { retriable: false, sqlstate: '53200', description: 'A session held more than max_buffered_bytes_per_session bytes; it was ended.' },
  GW_ERR_POLICY_LIMIT: { retriable: false, sqlstate: '53400', description: 'A session limit of the policy (max_duration_s, max_rows) was reached; the session was ended and a policy.limit event names the rule.' },
  GW_ERR_SHUTDOWN: { retriable: true, sqlstate: '57P01', description: 'The gateway is shutting down; the session was ended.' },
  GW_ERR_MASKING: { retriable: false, sqlstate: '08P01', description: 'Masking could not pair a target message with the request it answers (protocol desync) or failed internally; the session was ended rather than deliver unmasked data.' },
  GW_ERR_CANCEL_UNKNOWN_KEY: { retriable: false, description: 'A CancelRequest carried a key the gateway did not issue (or of an ended session); it was dropped.' },
  // SSH (protocols/ssh/, docs/ssh.md). Token, target, upstream and audit codes above apply to SSH too.
  GW_ERR_SSH_HOST_KEY: { retriable: false, description: "The gateway's SSH host key file could not be read, created or parsed." },
  GW_ERR_SSH_LOGIN_NAME: { retriable: false, description: 'The SSH user name is not `<sub>@<target>`; the connection is disconnected (ILLEGAL_USER_NAME).' },
  GW_ERR_SSH_AUTH_METHOD: { retriable: false, description: 'The client offered no token (SSH password or keyboard-interactive answer) or mapped public key before giving up, or max_auth_attempts was reached.' },
  GW_ERR_SSH_KEY_UNKNOWN: { retriable: false, description: 'The client offered a public key that no `gateway.ssh.public_keys` entry (or the public key file) maps to an identity.' },
  GW_ERR_SSH_KEY_EXPIRED: { retriable: false, description: 'The public key is mapped to an identity, but its `expires_at` has passed.' },
  GW_ERR_SSH_KEY_SIGNATURE: { retriable: false, description: 'The public-key signature of the login does not verify (the client does not hold the private key).' },
  GW_ERR_SSH_KEYS_UNAVAILABLE: { retriable: true, description: 'The public key file became unreadable or invalid; its keys are refused until it is fixed (fail closed).' },
  GW_ERR_SSH_HOST_KEY_MISMATCH: { retriable: false, description: 'The target presented a host key that is not pinned in its `host_keys`; the gateway refused to log in to it.' },
  GW_ERR_SSH_CHANNEL_LIMIT: { retriable: true, description: 'The connection already holds max_channels_per_session channels; the new channel was refused (RESOURCE_SHORTAGE).' },
  GW_ERR_SSH_FORWARDING_REFUSED: { retriable: false, description: 'TCP, stream-local, agent or X11 forwarding was asked for and no policy rule allows it; refused (ADMINISTRATIVELY_PROHIBITED).' },
  GW_ERR_SSH_SUBSYSTEM_REFUSED: { retriable: false, description: 'A subsystem (SFTP, …) or SCP transfer was refused by policy, or the subsystem is not supported.' },
  GW_ERR_SSH_REQUEST_INVALID: { retriable: false, description: 'A channel request out of order (a second shell/exec, a PTY after the shell started, a malformed size); refused, the session goes on.' },
  GW_ERR_SSH_LINE_NOT_DISCARDED: { retriable: false, description: 'A shell line was blocked (or its approval refused) and the shell showed no fresh prompt after the Ctrl-C sent to drop it (it may ignore SIGINT and still hold the line); the shell channel was closed (fail closed).' },
  GW_ERR_SSH_LINE_TOO_LONG: { retriable: false, description: 'A shell line longer than the gateway keeps to judge it (64 Ki characters); it is recorded as blocked and the shell channel is closed (fail closed).' },
  GW_ERR_SSH_CHANNEL_FAILED: { retriable: true, description: 'The target refused to open the channel or to run the request.' },
} as const satisfies Record<string, GatewayErrorInfo>;

export type GatewayErrorCode = keyof typeof GATEWAY_ERRORS;

export class GatewayError extends Error {
  readonly retriable: boolean;
  readonly sqlstate: string | undefined;
  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GatewayError';
    const info: GatewayErrorInfo = GATEWAY_ERRORS[code];
    this.retriable = info.retriable;
    this.sqlstate = info.sqlstate;
  }
}

export function gatewayError(code: GatewayErrorCode, message: string, cause?: unknown): GatewayError {
  return new GatewayError(code, message, cause === undefined ? undefined : { cause });
}

export function isGatewayError(err: unknown, code?: GatewayErrorCode): err is GatewayError {
  return err instanceof GatewayError && (code === undefined || err.code === code);
}
