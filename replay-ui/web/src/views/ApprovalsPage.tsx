/**
 * Approvals inbox: statements held by a `require_approval` rule, newest first, with who, what,
 * target, rule and a countdown; approve or deny with a reason (docs/approvals.md). The list polls
 * the API (it is built from the control topic, so a decision shows within a poll); the waiting
 * client proceeds or fails as soon as the gateway holding it reads the decision.
 */
import { useEffect, useState } from 'react';
import { decideApproval, listApprovals, type Approval, type Me } from '../api/client.ts';
import { linkProps } from '../router.ts';

const POLL_MS = 2000;

export function ApprovalsPage({ me }: { me: Me | null }) {
  const [items, setItems] = useState<Approval[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let live = true;
    const load = () =>
      listApprovals('pending').then(
        (r) => live && (setItems(r.items), setError(null)),
        (e: Error) => live && setError(e.message),
      );
    load();
    const poll = setInterval(load, POLL_MS);
    const clock = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      live = false;
      clearInterval(poll);
      clearInterval(clock);
    };
  }, [tick]);

  const canDecide = me?.roles.some((r) => r === 'approver' || r === 'admin') ?? false;
  return (
    <section>
      <div className="row">
        <h1 className="title">Approvals</h1>
        <span className="muted">{items ? `${items.length} waiting` : 'loading…'}</span>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {items && items.length === 0 && <p className="muted">Nothing waits for a decision.</p>}
      <ul className="approvals" data-testid="approvals">
        {items?.map((a) => (
          <ApprovalCard key={a.approval_id} a={a} now={now} canDecide={canDecide} isAdmin={me?.roles.includes('admin') ?? false} self={me?.sub === a.sub} onDone={() => setTick((t) => t + 1)} />
        ))}
      </ul>
    </section>
  );
}

function ApprovalCard({ a, now, canDecide, isAdmin, self, onDone }: { a: Approval; now: number; canDecide: boolean; isAdmin: boolean; self: boolean; onDone: () => void }) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<string | null>(null);
  const left = Math.max(0, Math.round((Date.parse(a.expires_at) - now) / 1000));
  const decide = (decision: 'approve' | 'deny', override?: 'force') => {
    setBusy(true);
    setResult(null);
    decideApproval(a.approval_id, { decision, reason, ...(override ? { override } : {}) }).then(
      () => {
        setResult(decision === 'approve' ? 'Approval sent.' : 'Denial sent.');
        onDone();
      },
      (e: Error) => {
        setResult(e.message);
        setBusy(false);
      },
    );
  };
  return (
    <li className="approval" data-approval-id={a.approval_id}>
      <div className="row">
        <strong>{a.sub}</strong>
        <span className={`tag ${a.actor_kind}`}>{a.actor_kind}</span>
        <span>→ {a.target_id}</span>
        <span className="muted">rule {a.rule_id}</span>
        <span className="countdown" data-testid="countdown" title={a.expires_at}>
          {left > 0 ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} left` : 'expired'}
        </span>
      </div>
      <pre className="sql">{a.statement}</pre>
      <p className="muted">
        {a.features.join(', ')}
        {a.relations.length > 0 && ` · ${a.relations.join(', ')}`} · approvers: {a.approver_groups.join(', ')} ({a.approvals}/{a.min_approvers}) ·{' '}
        <a {...linkProps(`/ui/sessions/${encodeURIComponent(a.session_id)}`)}>session</a>
      </p>
      {canDecide && (
        <div className="decide">
          <input aria-label="Reason" placeholder="Reason (required, kept as evidence)" value={reason} onChange={(e) => setReason(e.target.value)} disabled={busy} />
          <button disabled={busy || reason.trim().length < 3 || self} onClick={() => decide('approve')} title={self ? 'You cannot approve your own statement' : undefined}>
            Approve
          </button>
          <button className="danger" disabled={busy || reason.trim().length < 3} onClick={() => decide('deny')}>
            Deny
          </button>
          {isAdmin && (
            <button className="link" disabled={busy || reason.trim().length < 3} onClick={() => decide('approve', 'force')} title="Approve outside the rule's approver groups: recorded as approval.override">
              Force approve
            </button>
          )}
        </div>
      )}
      {result && <p role="status">{result}</p>}
    </li>
  );
}
