/** Session lifecycle and authentication events, emitted by the gateway in the session's chain. */
import { Type, type Static } from '@sinclair/typebox';
import { BaseFields } from '../envelope.ts';

export const SessionStarted = Type.Object(
  {
    type: Type.Literal('session.started'),
    version: Type.Literal(1),
    ...BaseFields,
    tls: Type.Boolean({ description: 'client ↔ gateway leg encrypted' }),
    upstream_tls: Type.Boolean({ description: 'gateway ↔ target leg encrypted' }),
    /** Client application_name or user agent, as the client claimed it. */
    client_app: Type.Optional(Type.String()),
    /** Client startup parameters forwarded to the target (values clipped). */
    client_params: Type.Optional(Type.Record(Type.String(), Type.String())),
    /** Names of client startup parameters the gateway did not forward (e.g. `options`). */
    dropped_params: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false, $id: 'vigil.session.started.v1' },
);
export type SessionStarted = Static<typeof SessionStarted>;

export const EndReason = Type.Union([
  Type.Literal('client_closed'), // client sent Terminate or closed its socket
  Type.Literal('target_closed'), // target closed the connection
  Type.Literal('protocol_error'), // a malformed or oversized frame from either side
  Type.Literal('auth_failed'),
  Type.Literal('refused'), // refused before authentication (bad startup, TLS required, unknown target, fail-closed)
  Type.Literal('upstream_error'), // could not connect/authenticate to the target
  Type.Literal('gateway_shutdown'),
  Type.Literal('timeout'),
  Type.Literal('policy_limit'), // a session limit of the policy (max_duration_s, max_rows) was reached
]);
export type EndReason = Static<typeof EndReason>;

const Counts = Type.Object({
  bytes_c2s: Type.Integer({ minimum: 0 }),
  bytes_s2c: Type.Integer({ minimum: 0 }),
  messages_c2s: Type.Integer({ minimum: 0 }),
  messages_s2c: Type.Integer({ minimum: 0 }),
});

export const SessionEnded = Type.Object(
  {
    type: Type.Literal('session.ended'),
    version: Type.Literal(1),
    ...BaseFields,
    reason: EndReason,
    /** Human-readable detail; never payload bytes or secrets. */
    detail: Type.Optional(Type.String()),
    duration_us: Type.Integer({ minimum: 0 }),
    ...Counts.properties,
  },
  { additionalProperties: false, $id: 'vigil.session.ended.v1' },
);
export type SessionEnded = Static<typeof SessionEnded>;

export const AuthFailed = Type.Object(
  {
    type: Type.Literal('auth.failed'),
    version: Type.Literal(1),
    ...BaseFields,
    /** Stable code, e.g. GW_ERR_TOKEN_EXPIRED. */
    code: Type.String(),
    /** What went wrong, safe to show: never the token itself. */
    reason: Type.String(),
    /** The user name the client claimed at startup. */
    claimed_user: Type.Optional(Type.String()),
  },
  { additionalProperties: false, $id: 'vigil.auth.failed.v1' },
);
export type AuthFailed = Static<typeof AuthFailed>;

/** A connection or message refused for bad input (malformed startup, oversized frame, …). */
export const ProtocolRefused = Type.Object(
  {
    type: Type.Literal('protocol.refused'),
    version: Type.Literal(1),
    ...BaseFields,
    code: Type.String(),
    reason: Type.String(),
    direction: Type.Optional(Type.Union([Type.Literal('c2s'), Type.Literal('s2c')])),
    /** SQLSTATE (PostgreSQL) or equivalent sent back to the client, if any. */
    sqlstate: Type.Optional(Type.String()),
  },
  { additionalProperties: false, $id: 'vigil.protocol.refused.v1' },
);
export type ProtocolRefused = Static<typeof ProtocolRefused>;
