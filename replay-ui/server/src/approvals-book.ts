/**
 * The API's view of approval requests, built only from the control topic `vigil.approvals.v1`
 * (event-sourced read model): the gateways' mirrors of `approval.requested` / `approval.resolved`
 * and the decisions published by this or another API process. Rebuilt from the beginning of the
 * topic at start (a consumer group of its own per process, so every API replica sees everything).
 *
 * State of a request: `pending` until its `approval.resolved` arrives (then its outcome), shown as
 * `expired` once `expires_at` has passed (the gateway's timer decides; the resolution follows).
 * Decisions are checked here with the gateway's own rules (tally.ts) before they are published.
 */
import { randomUUID } from 'node:crypto';
import { Topics, type Consumer, type ConsumerBatch, type EventLog, type Producer } from '@vigil/eventlog';
import { nowUs, type ApprovalDecided, type ApprovalOutcome, type ApprovalOverride, type ApprovalRequested } from '@vigil/schemas';
import { ApprovalTally, type Verdict } from '@vigil/gateway/approvals/tally';
import { decodeControlRecord, encodeDecision } from '@vigil/gateway/approvals/control';

export type ApprovalState = 'pending' | ApprovalOutcome;

export interface ApprovalEntry {
  readonly request: ApprovalRequested;
  readonly tally: ApprovalTally;
  outcome: ApprovalOutcome | undefined;
}

/** Requests kept in memory (oldest resolved ones dropped first beyond). */
const MAX_ENTRIES = 100_000;

export class ApprovalBook {
  private readonly entries = new Map<string, ApprovalEntry>();
  private consumer: Consumer | undefined;

  private constructor(
    private readonly log: EventLog,
    private readonly producer: Producer,
  ) {}

  static async open(log: EventLog, producer: Producer = log.producer()): Promise<ApprovalBook> {
    const book = new ApprovalBook(log, producer);
    await log.ensureTopics([Topics.approvals]);
    book.consumer = log.consumer({ groupId: `vigil-api-approvals-${randomUUID()}`, topics: [Topics.approvals], fromBeginning: true });
    await book.consumer.run(async (batch) => book.onBatch(batch));
    return book;
  }

  stateOf(e: ApprovalEntry, now = nowUs()): ApprovalState {
    if (e.outcome !== undefined) return e.outcome;
    return now > e.request.expires_at ? 'expired' : 'pending';
  }

  get(id: string): ApprovalEntry | undefined {
    return this.entries.get(id);
  }

  /** Newest first. */
  list(state: ApprovalState | 'all'): ApprovalEntry[] {
    const now = nowUs();
    return [...this.entries.values()].filter((e) => state === 'all' || this.stateOf(e, now) === state).sort((a, b) => b.request.time - a.request.time);
  }

  /** The gateway's rules, applied to what this book knows; a refusal never reaches the log. */
  check(e: ApprovalEntry, d: ApprovalDecided | ApprovalOverride): Verdict {
    if (e.outcome !== undefined) return { ok: false, code: 'GW_ERR_APPROVAL_DECIDED', message: `the request is already ${e.outcome}` };
    return e.tally.check(d, nowUs());
  }

  async publish(d: ApprovalDecided | ApprovalOverride): Promise<void> {
    await this.producer.send(Topics.approvals, [encodeDecision(d)]);
  }

  private async onBatch(batch: ConsumerBatch): Promise<void> {
    for (const r of batch.records) {
      const ev = decodeControlRecord(r.value, r.headers);
      if (ev === undefined) continue;
      if (ev.type === 'approval.requested') {
        if (!this.entries.has(ev.approval_id)) {
          const { sub = '', approver_groups, min_approvers, allow_self_approval, expires_at } = ev;
          this.entries.set(ev.approval_id, { request: ev, tally: new ApprovalTally({ requester: sub, approver_groups, min_approvers, allow_self_approval, expires_at }), outcome: undefined });
          this.bound();
        }
      } else if (ev.type === 'approval.resolved') {
        const e = this.entries.get(ev.approval_id);
        if (e) e.outcome = ev.outcome;
      } else {
        const e = this.entries.get(ev.approval_id);
        if (e && e.outcome === undefined && e.tally.check(ev, ev.time).ok) e.tally.apply(ev);
      }
    }
  }

  private bound(): void {
    if (this.entries.size <= MAX_ENTRIES) return;
    for (const [id, e] of this.entries) {
      if (e.outcome !== undefined) {
        this.entries.delete(id);
        if (this.entries.size <= MAX_ENTRIES) return;
      }
    }
  }

  async close(): Promise<void> {
    await this.consumer?.stop();
  }
}
