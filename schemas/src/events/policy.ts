/** Policy enforcement events, emitted by the gateway in the session's chain. */
import { Type, type Static } from '@sinclair/typebox';
import { BaseFields } from '../envelope.ts';

/**
 * `policy.blocked` v1: a statement the policy refused; it never reached the target (the client got an
 * ErrorResponse naming the rule). Follows, in the chain, the c2s `frame` that carried it.
 * `statement` is the statement text as the client sent it (masked first with `mask_before_log`);
 * ingest masks it again before storing it (docs/masking.md, "Masking at rest").
 */
export const PolicyBlocked = Type.Object(
  {
    type: Type.Literal('policy.blocked'),
    version: Type.Literal(1),
    ...BaseFields,
    /** The deciding rule; null when a policy default decided (defaults.action / defaults.unparsable). */
    rule_id: Type.Union([Type.String(), Type.Null()]),
    /** What the policy said. `require_approval` is enforced as a block until approvals exist. */
    action: Type.Union([Type.Literal('block'), Type.Literal('require_approval')]),
    /** rule: a rule decided; default: defaults.action; unparsable: defaults.unparsable. */
    reason: Type.Union([Type.Literal('rule'), Type.Literal('default'), Type.Literal('unparsable')]),
    /** GW_ERR_POLICY_BLOCKED or GW_ERR_POLICY_UNPARSABLE. */
    code: Type.String(),
    /** SQLSTATE sent to the client (PostgreSQL only; absent for SSH). */
    sqlstate: Type.Optional(Type.String({ pattern: '^[0-9A-Z]{5}$' })),
    /** The error message the client received. */
    message: Type.String(),
    /** Which protocol message carried it: Query ('simple'), Parse or Bind ('extended'), FunctionCall ('function_call'). */
    protocol_kind: Type.Union([
      Type.Literal('simple'),
      Type.Literal('extended'),
      Type.Literal('function_call'),
      // SSH (docs/ssh.md): an exec request's command, or a line typed/pasted in an interactive shell.
      Type.Literal('ssh_exec'),
      Type.Literal('ssh_shell'),
    ]),
    /** SSH: the gateway channel number the command was sent on. */
    channel: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Prepared statement name (extended protocol; '' is the unnamed statement). */
    statement_name: Type.Optional(Type.String()),
    /** The blocked statement's text (one statement of a multi-statement query); for SSH the command line. */
    statement: Type.String(),
    features: Type.Array(Type.String()),
    relations: Type.Array(Type.String()),
    /** Parser error for unparsable statements (the client's own text, never parameters). */
    parse_error: Type.Optional(Type.String()),
  },
  { additionalProperties: false, $id: 'vigil.policy.blocked.v1' },
);
export type PolicyBlocked = Static<typeof PolicyBlocked>;

/**
 * The gateway's own chain (session_id `gateway:<gateway_id>:<boot id>`, one per process start) holds
 * what concerns the process rather than one session: which policy is in force, and reloads refused.
 */
const GatewayChainFields = {
  ...BaseFields,
  /** The policy file, as configured. */
  file: Type.String(),
};

/** `policy.loaded` v1: a policy came into force (at start, or by hot reload). */
export const PolicyLoaded = Type.Object(
  {
    type: Type.Literal('policy.loaded'),
    version: Type.Literal(1),
    ...GatewayChainFields,
    /** SHA-256 of the canonical JSON of the validated policy (defaults applied): equal digests, equal policies. */
    digest: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    rules: Type.Integer({ minimum: 0 }),
    reason: Type.Union([Type.Literal('start'), Type.Literal('reload')]),
  },
  { additionalProperties: false, $id: 'vigil.policy.loaded.v1' },
);
export type PolicyLoaded = Static<typeof PolicyLoaded>;

/** `policy.rejected` v1: a changed policy file was refused; the policy in force stays (named by its digest). */
export const PolicyRejected = Type.Object(
  {
    type: Type.Literal('policy.rejected'),
    version: Type.Literal(1),
    ...GatewayChainFields,
    /** GW_ERR_POLICY_READ / _SYNTAX / _INVALID. */
    code: Type.String(),
    /** Every problem (YAML path, line/column, message); never the file's values. */
    problems: Type.Array(
      Type.Object(
        { path: Type.String(), message: Type.String(), line: Type.Optional(Type.Integer()), col: Type.Optional(Type.Integer()) },
        { additionalProperties: false },
      ),
    ),
    /** Digest of the policy that stays in force. */
    in_force_digest: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  },
  { additionalProperties: false, $id: 'vigil.policy.rejected.v1' },
);
export type PolicyRejected = Static<typeof PolicyRejected>;

/**
 * `policy.limit` v1: a session limit of the policy was reached and the gateway ended the session
 * (FATAL 53400 to the client). In the session's chain, just before session.ended.
 */
export const PolicyLimit = Type.Object(
  {
    type: Type.Literal('policy.limit'),
    version: Type.Literal(1),
    ...BaseFields,
    rule_id: Type.String(),
    limit: Type.Union([Type.Literal('max_duration_s'), Type.Literal('max_rows')]),
    value: Type.Integer({ minimum: 1 }),
    /** Seconds elapsed or rows returned when it was enforced. */
    observed: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false, $id: 'vigil.policy.limit.v1' },
);
export type PolicyLimit = Static<typeof PolicyLimit>;
