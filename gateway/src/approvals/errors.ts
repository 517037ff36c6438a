/**
 * Stable error codes of just-in-time approval. Same shape as gateway/src/errors.ts; docs/errors.md
 * lists each one (test/errors.test.ts checks that). The API refuses a decision with the same code
 * the gateway would (tally.ts), so one code means one thing wherever it is seen.
 */
import type { PolicyErrorInfo } from '../policy/errors.ts';

export const APPROVAL_ERRORS = {
  GW_ERR_APPROVAL_DENIED: {
    retriable: false,
    sqlstate: '42501',
    description: 'A statement held for approval was denied by an approver; the message names the rule, the approver and their reason. Not FATAL: the session goes on.',
  },
  GW_ERR_APPROVAL_EXPIRED: {
    retriable: true,
    sqlstate: '42501',
    description: 'No decision arrived within the rule\'s `timeout_s`; the statement was not run. Retrying asks again.',
  },
  GW_ERR_APPROVAL_UNAVAILABLE: {
    retriable: true,
    sqlstate: '42501',
    description: 'The approval request could not be published to the control topic (event log down), so nobody could approve it: the statement was refused (fail closed).',
  },
  GW_ERR_APPROVAL_SELF: {
    retriable: false,
    description: 'A decision refused because the decider is the requester and the rule does not allow self-approval.',
  },
  GW_ERR_APPROVAL_NOT_APPROVER: {
    retriable: false,
    description: 'A decision refused because the decider is in none of the rule\'s approver groups.',
  },
  GW_ERR_APPROVAL_DUPLICATE: {
    retriable: false,
    description: 'A second approval by the same subject; it does not count towards `min_approvers`.',
  },
  GW_ERR_APPROVAL_DECIDED: {
    retriable: false,
    description: 'A decision for a request that is no longer pending (already approved, denied, expired, cancelled or closed).',
  },
} as const satisfies Record<string, PolicyErrorInfo>;

export type ApprovalErrorCode = keyof typeof APPROVAL_ERRORS;
