/**
 * The gateway's side of just-in-time approval: holds waiting for a decision, and the control topic.
 *
 * One broker per gateway process. It reads `vigil.approvals.v1` with a consumer group of its own
 * (every process must see every decision: the decision for a hold is published by the API, which
 * does not know which process holds the session) from the beginning (so a decision published while
 * the consumer is still joining is not skipped; the topic is small, and records of holds this process
 * does not have are ignored). It publishes the mirror of each `approval.requested` / `approval.resolved`
 * (the same sealed bytes as in the session's chain) so the API can list what waits.
 *
 * A hold resolves exactly once: approved or denied by decisions (tally.ts), expired by its timer,
 * cancelled by the client, closed with its session or the broker, or `unavailable` when its request
 * could not be published (nobody could approve it: fail closed).
 */
import { randomUUID } from 'node:crypto';
import { Topics, type Consumer, type ConsumerBatch, type EventLog, type Producer } from '@vigil/eventlog';
import { nowUs, type AppliedDecision, type ApprovalOutcome } from '@vigil/schemas';
import type { Logger } from '../logger.ts';
import { ApprovalTally, type ApprovalTerms } from './tally.ts';
import { decodeControl } from './control.ts';

export interface HoldResult {
  readonly outcome: ApprovalOutcome;
  readonly decisions: readonly AppliedDecision[];
  readonly waited_us: number;
}

export interface Hold {
  readonly approval_id: string;
  readonly done: Promise<HoldResult>;
  /** End the wait without a decision (the client cancelled, or the session closed). No-op once resolved. */
  cancel(outcome: Extract<ApprovalOutcome, 'cancelled' | 'closed'>): void;
}

export interface HoldRequest {
  readonly approval_id: string;
  readonly session_id: string;
  readonly terms: ApprovalTerms;
  /**
   * The sealed `approval.requested` record (as appended to the session's chain): a promise when the
   * recorder thread seals it — the hold is registered at once either way.
   */
  readonly requested: Buffer | Promise<Buffer>;
}

/** What the PostgreSQL (and later SSH) sessions need. */
export interface ApprovalService {
  hold(request: HoldRequest): Hold;
  /** Publish the sealed `approval.resolved` record (best effort: the chain has it anyway). */
  mirror(approval_id: string, record: Buffer, type: string): void;
  close(): Promise<void>;
}

interface Waiting {
  readonly tally: ApprovalTally;
  readonly started: number;
  readonly timer: NodeJS.Timeout;
  finish(outcome: ApprovalOutcome): void;
}

export interface BrokerOptions {
  log: EventLog;
  /** The producer the gateway writes through (may be the spooling one). */
  producer: Producer;
  gatewayId: string;
  logger: Logger;
}

export class ApprovalBroker implements ApprovalService {
  private readonly waiting = new Map<string, Waiting>();
  private consumer: Consumer | undefined;
  private closed = false;
  readonly stats = { held: 0, approved: 0, denied: 0, expired: 0, cancelled: 0, refused_decisions: 0 };

  private constructor(private readonly o: BrokerOptions) {}

  static async start(o: BrokerOptions): Promise<ApprovalBroker> {
    const broker = new ApprovalBroker(o);
    await o.log.ensureTopics([Topics.approvals]);
    broker.consumer = o.log.consumer({ groupId: `vigil-gateway-approvals-${o.gatewayId}-${randomUUID()}`, topics: [Topics.approvals], fromBeginning: true });
    await broker.consumer.run((batch) => broker.onBatch(batch));
    return broker;
  }

  hold(request: HoldRequest): Hold {
    const { approval_id, terms } = request;
    let resolve!: (r: HoldResult) => void;
    const done = new Promise<HoldResult>((r) => (resolve = r));
    const started = nowUs();
    const tally = new ApprovalTally(terms);
    const finish = (outcome: ApprovalOutcome): void => {
      const w = this.waiting.get(approval_id);
      if (w === undefined) return;
      clearTimeout(w.timer);
      this.waiting.delete(approval_id);
      if (outcome === 'approved' || outcome === 'denied' || outcome === 'expired' || outcome === 'cancelled') this.stats[outcome]++;
      resolve({ outcome, decisions: [...tally.decisions], waited_us: Math.max(0, nowUs() - started) });
    };
    const ms = Math.max(0, Math.ceil((terms.expires_at - started) / 1000));
    const timer = setTimeout(() => finish('expired'), ms);
    timer.unref();
    // Registered before publishing: a decision can never arrive before its hold is known.
    this.waiting.set(approval_id, { tally, started, timer, finish });
    this.stats.held++;
    if (this.closed) finish('closed');
    else {
      Promise.resolve(request.requested)
        .then((value) => this.o.producer.send(Topics.approvals, [{ key: approval_id, value, headers: { type: 'approval.requested' } }]))
        .catch((err: Error) => {
          this.o.logger.error({ approval_id, session_id: request.session_id, err: err.message }, 'approval request could not be published: the statement is refused');
          finish('unavailable');
        });
    }
    return { approval_id, done, cancel: (outcome) => finish(outcome) };
  }

  mirror(approval_id: string, record: Buffer, type: string): void {
    if (this.closed) return;
    // Keyed by approval id like the request and its decisions: one partition, in order.
    this.o.producer.send(Topics.approvals, [{ key: approval_id, value: record, headers: { type } }]).catch((err: Error) => {
      this.o.logger.warn({ approval_id, type, err: err.message }, 'approval event could not be mirrored to the control topic');
    });
  }

  private async onBatch(batch: ConsumerBatch): Promise<void> {
    for (const record of batch.records) {
      const type = record.headers?.type;
      if (type !== 'approval.decided' && type !== 'approval.override') continue;
      const decision = decodeControl(record.value);
      if (decision === undefined || (decision.type !== 'approval.decided' && decision.type !== 'approval.override')) {
        this.o.logger.warn({ offset: record.offset, type }, 'malformed approval decision on the control topic ignored');
        continue;
      }
      const w = this.waiting.get(decision.approval_id);
      if (w === undefined) continue; // another process's hold, or one already resolved
      const verdict = w.tally.check(decision, nowUs());
      if (!verdict.ok) {
        this.stats.refused_decisions++;
        this.o.logger.warn({ approval_id: decision.approval_id, decider: decision.sub, code: verdict.code, reason: verdict.message }, 'approval decision refused by the gateway');
        continue;
      }
      const state = w.tally.apply(decision);
      if (state !== 'pending') w.finish(state);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.waiting.values()]) w.finish('closed');
    await this.consumer?.stop();
  }
}
