/**
 * Just-in-time approval of one command (issue 3, item 4).
 *
 * Two kinds of events, on two streams:
 *
 * - In the session's hash chain (emitted by the gateway that holds the session, like every other
 *   session event): `approval.requested` when a statement is held, `approval.resolved` when the hold
 *   ends (approved, denied, expired, cancelled by the client, or the session closed). The chain is
 *   the evidence: it says what waited, who decided and what the target then received.
 *
 * - On the control topic `vigil.approvals.v1` (not chained; JSON; key = approval id): the decisions
 *   `approval.decided` (an approver's approve/deny) and `approval.override` (an admin's force-approve
 *   or a break-glass approval: a distinct type, so detection can watch it), written by the API. Every
 *   gateway process reads the topic and applies what concerns the holds it has, so the decision
 *   reaches whichever process holds the session. The gateway also mirrors `approval.requested` and
 *   `approval.resolved` there, so the API's list of pending requests needs nothing but the topic.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BaseFields } from '../envelope.ts';

const ProtocolKind = Type.Union([Type.Literal('simple'), Type.Literal('extended'), Type.Literal('command')]);

/** What an approval request asks about; shared by the chained event and its mirror. */
export const ApprovalRequestFields = {
  approval_id: Type.String({ minLength: 1 }),
  /** The rule that requires approval. */
  rule_id: Type.String(),
  /** Globs of the groups whose members may decide. */
  approver_groups: Type.Array(Type.String()),
  min_approvers: Type.Integer({ minimum: 1 }),
  allow_self_approval: Type.Boolean(),
  /** µs since epoch: no decision by then → expired (denied). */
  expires_at: Type.Integer({ minimum: 0 }),
  protocol_kind: ProtocolKind,
  statement_name: Type.Optional(Type.String()),
  /** The held statement (all statements of a multi-statement query), as the client sent it. */
  statement: Type.String(),
  features: Type.Array(Type.String()),
  relations: Type.Array(Type.String()),
};

export const ApprovalRequested = Type.Object(
  {
    type: Type.Literal('approval.requested'),
    version: Type.Literal(1),
    ...BaseFields,
    ...ApprovalRequestFields,
  },
  { additionalProperties: false, $id: 'vigil.approval.requested.v1' },
);
export type ApprovalRequested = Static<typeof ApprovalRequested>;

/** One decision as the gateway applied it (in `approval.resolved`). */
export const AppliedDecision = Type.Object(
  {
    event_id: Type.String(),
    decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')]),
    sub: Type.String(),
    reason: Type.String(),
    /** Set for an `approval.override`. */
    override: Type.Optional(Type.Union([Type.Literal('force'), Type.Literal('break_glass')])),
  },
  { additionalProperties: false },
);
export type AppliedDecision = Static<typeof AppliedDecision>;

export const ApprovalOutcome = Type.Union([
  Type.Literal('approved'), // forwarded to the target
  Type.Literal('denied'),
  Type.Literal('expired'),
  Type.Literal('cancelled'), // the client sent a CancelRequest while it waited
  Type.Literal('closed'), // the session ended (or the gateway shut down) while it waited
  Type.Literal('unavailable'), // the request could not be published: nobody could have approved it
]);
export type ApprovalOutcome = Static<typeof ApprovalOutcome>;

export const ApprovalResolved = Type.Object(
  {
    type: Type.Literal('approval.resolved'),
    version: Type.Literal(1),
    ...BaseFields,
    approval_id: Type.String({ minLength: 1 }),
    outcome: ApprovalOutcome,
    /** The decisions that counted, in the order the gateway applied them. */
    decisions: Type.Array(AppliedDecision),
    /** µs the statement was held. */
    waited_us: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false, $id: 'vigil.approval.resolved.v1' },
);
export type ApprovalResolved = Static<typeof ApprovalResolved>;

/** Who decided: from the verified token of the API call. */
const DeciderFields = {
  event_id: Type.String({ minLength: 1 }),
  /** µs since epoch. */
  time: Type.Integer({ minimum: 0 }),
  approval_id: Type.String({ minLength: 1 }),
  session_id: Type.String({ minLength: 1 }),
  sub: Type.String({ minLength: 1 }),
  groups: Type.Array(Type.String()),
  issuer: Type.Optional(Type.String()),
  /** Free text required of every decision (it is audit evidence). */
  reason: Type.String({ minLength: 1, maxLength: 2000 }),
  /** How the decision was made (api, cli, ui). */
  via: Type.String(),
};

export const ApprovalDecided = Type.Object(
  {
    type: Type.Literal('approval.decided'),
    version: Type.Literal(1),
    ...DeciderFields,
    decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')]),
  },
  { additionalProperties: false, $id: 'vigil.approval.decided.v1' },
);
export type ApprovalDecided = Static<typeof ApprovalDecided>;

export const ApprovalOverride = Type.Object(
  {
    type: Type.Literal('approval.override'),
    version: Type.Literal(1),
    ...DeciderFields,
    /** force: an admin approved outside the rule's approver groups/quorum; break_glass: an emergency approval, self-approval included. */
    kind: Type.Union([Type.Literal('force'), Type.Literal('break_glass')]),
  },
  { additionalProperties: false, $id: 'vigil.approval.override.v1' },
);
export type ApprovalOverride = Static<typeof ApprovalOverride>;

/**
 * `approval.refused` v1: a decision the API refused (self-approval, not an approver, a second vote,
 * already decided or expired, a force override without the admin role). Never published as a
 * decision; recorded in the API process's own chain (like `recording.viewed`) so that attempts —
 * a requester trying to approve their own statement above all — are evidence and detection sees them.
 * The identity fields are the decider's.
 */
export const ApprovalRefused = Type.Object(
  {
    type: Type.Literal('approval.refused'),
    version: Type.Literal(1),
    ...BaseFields,
    approval_id: Type.String({ minLength: 1 }),
    /** The session whose statement waits (the chain's own session_id is the API's). */
    request_session_id: Type.String(),
    /** The requester of the held statement. */
    requester: Type.String(),
    decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')]),
    override: Type.Optional(Type.Union([Type.Literal('force'), Type.Literal('break_glass')])),
    /** GW_ERR_APPROVAL_* from the tally, or API_ERR_FORBIDDEN for a force override without the admin role. */
    code: Type.String(),
    message: Type.String(),
  },
  { additionalProperties: false, $id: 'vigil.approval.refused.v1' },
);
export type ApprovalRefused = Static<typeof ApprovalRefused>;

/** What travels on `vigil.approvals.v1`. */
export const ApprovalControl = Type.Union([ApprovalRequested, ApprovalResolved, ApprovalDecided, ApprovalOverride]);
export type ApprovalControl = Static<typeof ApprovalControl>;
