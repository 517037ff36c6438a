/**
 * The session side of one approval wait, shared by the PostgreSQL and SSH sessions: record
 * `approval.requested` in the session's chain, hand the hold to the ApprovalService (broker.ts),
 * wait, record `approval.resolved` exactly once (also when the wait is cut short synchronously by a
 * cancel or the session's end, so the chain has the outcome before `session.ended`), and mirror it.
 * What the client is told stays with each protocol.
 */
import { randomUUID } from 'node:crypto';
import { nowUs, type ApprovalRequested, type ChainedRecord, type ChainInput } from '@vigil/schemas';
import type { ApprovalAction } from '../policy/schema.ts';
import type { Logger } from '../logger.ts';
import type { ApprovalService, Hold, HoldResult } from './broker.ts';

/** What is held: the statement or command and the rule that asks for approval. */
export interface HoldAsk {
  readonly rule_id: string;
  readonly approval: Readonly<ApprovalAction>;
  readonly protocol_kind: ApprovalRequested['protocol_kind'];
  readonly statement_name?: string;
  readonly statement: string;
  readonly features: readonly string[];
  readonly relations: readonly string[];
}

export interface SessionHoldOptions {
  readonly service: ApprovalService;
  readonly sessionId: string;
  /** `sub` of the session's identity: the requester. */
  readonly requester: string;
  /** Identity and target fields of the session's events. */
  readonly fields: () => Omit<Partial<ApprovalRequested>, 'type' | 'version'>;
  /** Appends to the session's chain (its place is taken at once); resolves with the sealed record. */
  readonly record: (input: ChainInput) => Promise<ChainedRecord>;
  readonly logger: Logger;
}

export class SessionHolds {
  private waiting: { hold: Hold; ask: HoldAsk; recorded: boolean } | undefined;

  constructor(private readonly o: SessionHoldOptions) {}

  /** True while a wait is in progress (one at a time per session or channel). */
  get active(): boolean {
    return this.waiting !== undefined;
  }

  /**
   * Record the request and wait for its outcome. `onHeld` runs once the hold exists (tell the client
   * it waits, with the id approvers act on).
   */
  async wait(ask: HoldAsk, onHeld: (approval_id: string, timeout_s: number) => void): Promise<HoldResult & { approval_id: string }> {
    const approval_id = randomUUID();
    const { approver_groups, min_approvers, allow_self_approval, timeout_s } = ask.approval;
    const expires_at = nowUs() + timeout_s * 1_000_000;
    const requested = this.o.record({
      type: 'approval.requested',
      version: 1,
      ...this.o.fields(),
      approval_id,
      rule_id: ask.rule_id,
      approver_groups: [...approver_groups],
      min_approvers,
      allow_self_approval,
      expires_at,
      protocol_kind: ask.protocol_kind,
      ...(ask.statement_name !== undefined ? { statement_name: ask.statement_name } : {}),
      statement: ask.statement,
      features: [...ask.features],
      relations: [...ask.relations],
    } as ChainInput);
    const hold = this.o.service.hold({
      approval_id,
      session_id: this.o.sessionId,
      terms: { requester: this.o.requester, approver_groups, min_approvers, allow_self_approval, expires_at },
      requested: requested.then((r) => r.bytes),
    });
    this.waiting = { hold, ask, recorded: false };
    onHeld(approval_id, timeout_s);
    const result = await hold.done;
    this.resolve(result);
    return { ...result, approval_id };
  }

  /** End the wait now (client cancel, session end), recorded synchronously. No-op when none waits. */
  settle(outcome: 'cancelled' | 'closed'): boolean {
    const w = this.waiting;
    if (w === undefined) return false;
    w.hold.cancel(outcome);
    // hold.done resolves on a later tick; the chain must have the outcome now.
    this.resolve({ outcome, decisions: [], waited_us: 0 });
    return true;
  }

  private resolve(result: HoldResult): void {
    const w = this.waiting;
    if (w === undefined || w.recorded) return;
    w.recorded = true;
    this.waiting = undefined;
    const resolved = this.o.record({
      type: 'approval.resolved',
      version: 1,
      ...this.o.fields(),
      approval_id: w.hold.approval_id,
      outcome: result.outcome,
      decisions: [...result.decisions],
      waited_us: result.waited_us,
    } as ChainInput);
    const approvalId = w.hold.approval_id;
    resolved.then(
      (r) => this.o.service.mirror(approvalId, r.bytes, 'approval.resolved'),
      (err: Error) => this.o.logger.error({ session_id: this.o.sessionId, approval_id: approvalId, err: err.message }, 'approval outcome could not be mirrored'),
    );
    this.o.logger.info({ session_id: this.o.sessionId, approval_id: w.hold.approval_id, outcome: result.outcome, rule_id: w.ask.rule_id }, 'approval resolved');
  }
}

/** The sentence a client is shown when its held statement or command was not approved. */
export function notApprovedMessage(r: HoldResult, ask: Pick<HoldAsk, 'rule_id' | 'approval'>, approval_id: string, what = 'statement'): string {
  const rule = `policy rule "${ask.rule_id}"`;
  const clip = (s: string): string => (s.length > 100 ? `${s.slice(0, 100)}…` : s);
  switch (r.outcome) {
    case 'denied': {
      const d = r.decisions.findLast((x) => x.decision === 'deny');
      return `${what} denied under ${rule} (approval ${approval_id})${d ? ` by ${clip(d.sub)}: ${clip(d.reason)}` : ''}`;
    }
    case 'expired':
      return `no approval decision within ${ask.approval.timeout_s} s under ${rule} (approval ${approval_id}): the ${what} was not run`;
    case 'cancelled':
      return `canceling ${what} due to user request`;
    case 'unavailable':
      return `approval could not be requested (event log unavailable) under ${rule}: the ${what} was not run`;
    case 'closed':
      return 'the gateway is shutting down';
    case 'approved':
      return '';
  }
}
