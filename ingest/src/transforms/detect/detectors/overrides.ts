/**
 * Approval abuse, from the session chain's approval.requested / approval.resolved:
 *  - overrides.override: a request approved by an override (force or break-glass);
 *  - overrides.self_approval: the requester approved their own request (allowed by the rule or by
 *    break-glass — still worth a look);
 *  - overrides.mutual_approval: A approved B's request and B approved A's (within pair_lookback_days,
 *    any sessions, any instance: the `approved` facts live in ClickHouse);
 *  - overrides.deny_retry: a statement denied (or expired) for an identity is sent again by it
 *    within retry_window_s (as a statement or a new approval request);
 *  - overrides.self_approval_attempt: the requester tried to approve their own request and the API
 *    refused it (`approval.refused` with GW_ERR_APPROVAL_SELF, from the API's chain).
 */
import { createHash } from 'node:crypto';
import type { DetectConfig } from '../config.ts';
import type { Detector, Finding } from '../types.ts';

/** Statement fingerprint: case, whitespace and literal values do not make a different statement. */
export function fingerprint(statement: string): string {
  const shape = statement
    .toLowerCase()
    .replace(/'(?:[^']|'')*'/g, '?')
    .replace(/\b\d+(?:\.\d+)?\b/g, '?')
    .replace(/\s+/g, ' ')
    .replace(/\s*;\s*$/, '')
    .trim();
  return createHash('sha256').update(shape).digest('hex').slice(0, 32);
}

export function overrides(config: DetectConfig['overrides']): Detector {
  const pair_us = config.pair_lookback_days * 86_400e6;
  const retry_us = config.retry_window_s * 1e6;
  const f = (rule: string, summary: string, evidence: string[], facts: Finding['facts'], dedupe_key: string, severity = config.severity): Finding => ({
    rule, severity, summary, evidence, facts, dedupe_key,
  });
  return {
    name: 'overrides',
    kinds: ['approval_requested', 'approval_resolved', 'approval_refused', 'query', 'blocked'],
    observe(obs, ctx) {
      const out: Finding[] = [];
      const requests = ctx.session<Map<string, { statement: string; event_id: string }>>(obs.session_id, 'overrides', () => new Map());
      const retried = (statement: string): void => {
        if (statement === '') return;
        const fp = fingerprint(statement);
        const denied = ctx.fact('denied', obs.s.sub, fp);
        if (denied && obs.time - denied.last <= retry_us && obs.time > denied.last) {
          out.push(f('overrides.deny_retry', `a statement denied ${Math.round((obs.time - denied.last) / 60e6)} min earlier was sent again`, [obs.event_id], { fingerprint: fp, denied_at: new Date(denied.last / 1000).toISOString() }, fp));
        }
      };
      switch (obs.kind) {
        case 'approval_requested':
          retried(obs.statement);
          requests.set(obs.approval_id, { statement: obs.statement, event_id: obs.event_id });
          break;
        case 'query':
        case 'blocked':
          retried(obs.statement);
          break;
        case 'approval_refused':
          if (obs.code === 'GW_ERR_APPROVAL_SELF') {
            out.push(f('overrides.self_approval_attempt', `${obs.s.sub} tried to approve their own request; refused`, [obs.event_id], { approver: obs.s.sub, approval_id: obs.approval_id }, obs.approval_id, 'high'));
          }
          break;
        case 'approval_resolved': {
          const req = requests.get(obs.approval_id);
          const evidence = req ? [req.event_id, obs.event_id] : [obs.event_id];
          const requester = obs.s.sub;
          if (obs.outcome === 'denied' || obs.outcome === 'expired') {
            if (req?.statement) ctx.note('denied', requester, fingerprint(req.statement), obs.time);
            break;
          }
          for (const d of obs.decisions) {
            if (d.decision !== 'approve') continue;
            if (d.override) {
              out.push(f('overrides.override', `request approved by ${d.override} override from ${d.sub}`, evidence, { approver: d.sub, override: d.override, approval_id: obs.approval_id }, obs.approval_id));
            }
            if (d.sub === requester) {
              out.push(f('overrides.self_approval', `${requester} approved their own request${d.override ? ` (${d.override})` : ''}`, evidence, { approver: d.sub, approval_id: obs.approval_id }, obs.approval_id, 'critical'));
              continue;
            }
            const reverse = ctx.fact('approved', requester, d.sub);
            ctx.note('approved', d.sub, requester, obs.time);
            if (reverse && obs.time - reverse.last <= pair_us) {
              const pair = [d.sub, requester].sort().join('|');
              out.push(f('overrides.mutual_approval', `${d.sub} and ${requester} approve each other's requests`, evidence, { approver: d.sub, requester, previous_at: new Date(reverse.last / 1000).toISOString() }, pair));
            }
          }
          requests.delete(obs.approval_id);
          break;
        }
        default:
          break;
      }
      return out;
    },
  };
}
