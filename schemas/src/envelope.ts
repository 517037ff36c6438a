/**
 * The event envelope (DESIGN.md "Events"). Every event carries these fields; per-type payloads
 * extend it in `events/`. `time` is µs since the Unix epoch (fits a JS number until year 2255).
 *
 * Identity and target fields are optional on the wire for `frame` events: a frame is hot-path data
 * and inherits them from its session's `session.started` event, which is in the same hash chain.
 * Decoders that need a full envelope join on `session_id`.
 */
import { Type, type Static } from '@sinclair/typebox';

export const Hash = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256, lowercase hex' });
/** prev_hash of the first event of a session. */
export const GENESIS_HASH = '0'.repeat(64);

export const ActorKind = Type.Union([Type.Literal('agent'), Type.Literal('human')]);
export type ActorKind = Static<typeof ActorKind>;

export const Protocol = Type.Union([
  Type.Literal('postgres'),
  Type.Literal('mysql'),
  Type.Literal('ssh'),
  Type.Literal('http'),
]);
export type Protocol = Static<typeof Protocol>;

/** Who: from the verified OIDC token (or what the client claimed, for auth.failed). */
export const IdentityFields = {
  sub: Type.Optional(Type.String()),
  groups: Type.Optional(Type.Array(Type.String())),
  issuer: Type.Optional(Type.String()),
  actor_kind: Type.Optional(ActorKind),
  client_addr: Type.Optional(Type.String()),
};

/** Where: the configured target. Never carries credentials. */
export const TargetFields = {
  target_id: Type.Optional(Type.String()),
  protocol: Type.Optional(Protocol),
  target_addr: Type.Optional(Type.String()),
  db_name: Type.Optional(Type.String()),
  db_user: Type.Optional(Type.String()),
  login: Type.Optional(Type.String()),
};

export const GatewayFields = {
  gateway_id: Type.String(),
  gateway_version: Type.String(),
};

export const ChainFields = {
  session_id: Type.String({ minLength: 1 }),
  /** Per-session, gap-free, starting at 0. */
  seq: Type.Integer({ minimum: 0 }),
  prev_hash: Hash,
  /** H(prev_hash ‖ canonical event bytes); see chain.ts. */
  hash: Hash,
};

export const BaseFields = {
  event_id: Type.String({ minLength: 1 }),
  /** µs since epoch. */
  time: Type.Integer({ minimum: 0 }),
  ...ChainFields,
  ...IdentityFields,
  ...TargetFields,
  ...GatewayFields,
};
