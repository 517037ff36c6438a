/** Policy enforcement events, emitted by the gateway in the session's chain. */
import { Type, type Static } from '@sinclair/typebox';
import { BaseFields } from '../envelope.ts';

/**
 * `policy.blocked` v1: a statement the policy refused; it never reached the target (the client got an
 * ErrorResponse naming the rule). Follows, in the chain, the c2s `frame` that carried it.
 * `statement` is the statement text as the client sent it: masking at rest comes later (issue 3).
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
