/**
 * The PostgreSQL v3 message table (protocol-message-formats in the PostgreSQL docs), by type
 * letter. The gateway interprets almost none of these: the table names frames, validates the
 * client's message types (PostgreSQL itself rejects unknown ones with 08P01, so refusing them here
 * changes nothing for a well-behaved client) and documents the few the gateway builds or rewrites.
 */

/** Messages a client (frontend) sends after startup. */
export const FrontendMessages: Readonly<Record<string, string>> = {
  B: 'Bind',
  C: 'Close',
  d: 'CopyData',
  c: 'CopyDone',
  f: 'CopyFail',
  D: 'Describe',
  E: 'Execute',
  H: 'Flush',
  F: 'FunctionCall',
  /** PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse share 'p'. */
  p: 'PasswordMessage',
  P: 'Parse',
  Q: 'Query',
  S: 'Sync',
  X: 'Terminate',
};

/** Messages a server (backend) sends. */
export const BackendMessages: Readonly<Record<string, string>> = {
  /** AuthenticationOk/CleartextPassword/MD5Password/SASL/SASLContinue/SASLFinal (int32 subtype). */
  R: 'Authentication',
  K: 'BackendKeyData',
  '2': 'BindComplete',
  '3': 'CloseComplete',
  C: 'CommandComplete',
  d: 'CopyData',
  c: 'CopyDone',
  G: 'CopyInResponse',
  H: 'CopyOutResponse',
  W: 'CopyBothResponse',
  D: 'DataRow',
  I: 'EmptyQueryResponse',
  E: 'ErrorResponse',
  V: 'FunctionCallResponse',
  v: 'NegotiateProtocolVersion',
  n: 'NoData',
  N: 'NoticeResponse',
  A: 'NotificationResponse',
  t: 'ParameterDescription',
  S: 'ParameterStatus',
  '1': 'ParseComplete',
  s: 'PortalSuspended',
  Z: 'ReadyForQuery',
  T: 'RowDescription',
};

/** Byte codes of the frontend types, for the validity check on the hot path (a 256-entry table). */
export const FRONTEND_TYPE_VALID: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (const k of Object.keys(FrontendMessages)) t[k.charCodeAt(0)] = 1;
  return t;
})();

/** Type letters as strings, indexed by byte, so recording a frame allocates no string. */
export const TYPE_LETTER: readonly string[] = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));

/** Startup-phase request codes (the int32 after the length; no type byte). */
export const StartupCode = {
  /** StartupMessage, protocol 3.0: (3 << 16) | 0. Minor versions 3.x are 196608 + x. */
  ProtocolV3: 196608,
  /** SSLRequest: 1234 << 16 | 5679. */
  SSLRequest: 80877103,
  /** GSSENCRequest: 1234 << 16 | 5680. */
  GSSENCRequest: 80877104,
  /** CancelRequest: 1234 << 16 | 5678. */
  CancelRequest: 80877102,
} as const;

/** Subtypes of the 'R' Authentication message. */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** Field codes of ErrorResponse / NoticeResponse. */
export const ErrorField = {
  Severity: 'S',
  /** Non-localized severity (9.6+). */
  SeverityV: 'V',
  Code: 'C',
  Message: 'M',
  Detail: 'D',
  Hint: 'H',
} as const;

/** Startup parameters the gateway owns and so never forwards upstream. */
export const GATEWAY_OWNED_PARAMS: ReadonlySet<string> = new Set(['user', 'database', 'replication']);

/**
 * Startup parameters forwarded to the target: presentation settings drivers send. Anything else —
 * notably `options` (`-c session_replication_role=replica` turns off audit triggers,
 * `-c log_statement=none` silences the server log) — would change the target session outside the
 * recorded stream, so it is dropped, and named in `session.started`. A client that needs another
 * setting can SET it in the session, where it is recorded like any statement. (Not forwarded either:
 * standard_conforming_strings — off, the target would read backslashes in strings differently from
 * the gateway's parser.)
 */
export const FORWARDED_PARAMS: ReadonlySet<string> = new Set([
  'application_name',
  'client_encoding',
  'DateStyle',
  'IntervalStyle',
  'TimeZone',
  'extra_float_digits',
  'search_path',
  'datestyle',
  'timezone',
]);
