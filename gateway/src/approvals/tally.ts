/**
 * Who may decide an approval request, and when it is decided. Pure: the API runs it before it
 * publishes a decision (so a refused decision gets a clear 4xx and never reaches the log), and the
 * gateway runs it again on what it reads from the control topic (defence in depth: the topic is a
 * trust boundary of its own, and the gateway is what lets the statement through).
 *
 *  - approve: the decider must be in one of the rule's approver groups and must not be the
 *    requester (unless the rule allows self-approval); one vote per subject; approved once
 *    `min_approvers` distinct subjects approved.
 *  - deny: any one approver denies (the requester may withdraw their own request).
 *  - override: approves at once, whoever the decider is — the API admits `force` only from admins
 *    and `break_glass` only with a reason; both are recorded as such for detection.
 *  - after `expires_at` nothing counts.
 */
import type { AppliedDecision, ApprovalDecided, ApprovalOverride } from '@vigil/schemas';
import { compileGlobList } from '../policy/glob.ts';

export interface ApprovalTerms {
  /** `sub` of the identity whose statement waits. */
  readonly requester: string;
  readonly approver_groups: readonly string[];
  readonly min_approvers: number;
  readonly allow_self_approval: boolean;
  /** µs since epoch. */
  readonly expires_at: number;
}

export type DecisionEvent = ApprovalDecided | ApprovalOverride;

export type RefusalCode = 'GW_ERR_APPROVAL_SELF' | 'GW_ERR_APPROVAL_NOT_APPROVER' | 'GW_ERR_APPROVAL_DUPLICATE' | 'GW_ERR_APPROVAL_EXPIRED' | 'GW_ERR_APPROVAL_DECIDED';

export type Verdict = { ok: true } | { ok: false; code: RefusalCode; message: string };

export type TallyState = 'pending' | 'approved' | 'denied';

export class ApprovalTally {
  private readonly isApproverGroup: (group: string) => boolean;
  private readonly approvedBy = new Set<string>();
  private current: TallyState = 'pending';
  readonly decisions: AppliedDecision[] = [];

  constructor(readonly terms: ApprovalTerms) {
    this.isApproverGroup = compileGlobList(terms.approver_groups);
  }

  get state(): TallyState {
    return this.current;
  }

  /** May this decision count now? `nowUs` defaults to the decision's own time. */
  check(d: DecisionEvent, nowUs: number = d.time): Verdict {
    if (this.current !== 'pending') return { ok: false, code: 'GW_ERR_APPROVAL_DECIDED', message: `the request is already ${this.current}` };
    if (nowUs > this.terms.expires_at) return { ok: false, code: 'GW_ERR_APPROVAL_EXPIRED', message: 'the request has expired' };
    if (d.type === 'approval.override') return { ok: true };
    const self = d.sub === this.terms.requester;
    if (d.decision === 'deny' && self) return { ok: true }; // withdrawing one's own request
    if (self && !this.terms.allow_self_approval) {
      return { ok: false, code: 'GW_ERR_APPROVAL_SELF', message: 'self-approval is not allowed: the requester cannot approve their own statement' };
    }
    if (!d.groups.some(this.isApproverGroup)) {
      return { ok: false, code: 'GW_ERR_APPROVAL_NOT_APPROVER', message: `the decider is in none of the approver groups (${this.terms.approver_groups.join(', ')})` };
    }
    if (d.decision === 'approve' && this.approvedBy.has(d.sub)) {
      return { ok: false, code: 'GW_ERR_APPROVAL_DUPLICATE', message: `${d.sub} has already approved this request` };
    }
    return { ok: true };
  }

  /** Apply a decision that passed `check`; returns the state after it. */
  apply(d: DecisionEvent): TallyState {
    const applied: AppliedDecision =
      d.type === 'approval.override'
        ? { event_id: d.event_id, decision: 'approve', sub: d.sub, reason: d.reason, override: d.kind }
        : { event_id: d.event_id, decision: d.decision, sub: d.sub, reason: d.reason };
    this.decisions.push(applied);
    if (d.type === 'approval.override') this.current = 'approved';
    else if (d.decision === 'deny') this.current = 'denied';
    else {
      this.approvedBy.add(d.sub);
      if (this.approvedBy.size >= this.terms.min_approvers) this.current = 'approved';
    }
    return this.current;
  }

  /** Distinct subjects that approved so far. */
  get approvals(): number {
    return this.approvedBy.size;
  }
}
