import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApprovalDecided, ApprovalOverride } from '@vigil/schemas';
import { ApprovalTally, type ApprovalTerms } from './tally.ts';

const terms = (over: Partial<ApprovalTerms> = {}): ApprovalTerms => ({
  requester: 'alice', approver_groups: ['dba', 'sec-*'], min_approvers: 1, allow_self_approval: false, expires_at: 1_000, ...over,
});
let n = 0;
const decided = (sub: string, groups: string[], decision: 'approve' | 'deny', time = 10): ApprovalDecided => ({
  type: 'approval.decided', version: 1, event_id: `e${n++}`, time, approval_id: 'a1', session_id: 's1', sub, groups, reason: 'ok', via: 'test', decision,
});
const override = (sub: string, kind: 'force' | 'break_glass'): ApprovalOverride => ({
  type: 'approval.override', version: 1, event_id: `e${n++}`, time: 10, approval_id: 'a1', session_id: 's1', sub, groups: [], reason: 'incident', via: 'test', kind,
});

test('an approver in a matching group (glob) approves', () => {
  const t = new ApprovalTally(terms());
  const d = decided('bob', ['dev', 'sec-oncall'], 'approve');
  assert.deepEqual(t.check(d), { ok: true });
  assert.equal(t.apply(d), 'approved');
  assert.deepEqual(t.check(decided('carol', ['dba'], 'deny')).ok, false, 'nothing counts once decided');
});

test('self-approval is refused unless the rule allows it; withdrawing one\'s own request is allowed', () => {
  const self = decided('alice', ['dba'], 'approve');
  const v = new ApprovalTally(terms()).check(self);
  assert.equal(v.ok, false);
  assert.equal(!v.ok && v.code, 'GW_ERR_APPROVAL_SELF');
  assert.deepEqual(new ApprovalTally(terms({ allow_self_approval: true })).check(self), { ok: true });
  const t = new ApprovalTally(terms());
  assert.equal(t.apply(decided('alice', [], 'deny')), 'denied');
});

test('a decider outside the approver groups is refused, for approve and deny', () => {
  const t = new ApprovalTally(terms());
  for (const d of ['approve', 'deny'] as const) {
    const v = t.check(decided('mallory', ['dev'], d));
    assert.equal(!v.ok && v.code, 'GW_ERR_APPROVAL_NOT_APPROVER');
  }
});

test('min_approvers counts distinct subjects; a duplicate vote is refused; one deny ends it', () => {
  const t = new ApprovalTally(terms({ min_approvers: 2 }));
  assert.equal(t.apply(decided('bob', ['dba'], 'approve')), 'pending');
  const dup = t.check(decided('bob', ['dba'], 'approve'));
  assert.equal(!dup.ok && dup.code, 'GW_ERR_APPROVAL_DUPLICATE');
  assert.equal(t.apply(decided('carol', ['dba'], 'approve')), 'approved');
  const u = new ApprovalTally(terms({ min_approvers: 2 }));
  u.apply(decided('bob', ['dba'], 'approve'));
  assert.equal(u.apply(decided('carol', ['dba'], 'deny')), 'denied');
});

test('nothing counts after expiry', () => {
  const v = new ApprovalTally(terms()).check(decided('bob', ['dba'], 'approve', 2_000));
  assert.equal(!v.ok && v.code, 'GW_ERR_APPROVAL_EXPIRED');
});

test('overrides approve at once, whoever decides, and are recorded as overrides', () => {
  for (const kind of ['force', 'break_glass'] as const) {
    const t = new ApprovalTally(terms({ min_approvers: 3 }));
    const o = override('alice', kind);
    assert.deepEqual(t.check(o), { ok: true });
    assert.equal(t.apply(o), 'approved');
    assert.equal(t.decisions[0]!.override, kind);
  }
});
