/**
 * Micro-benchmark of policy evaluation (not a test): a realistic 20-rule policy (5 masked
 * columns, detectors, limits, a time window), a mix of identities and statements, µs per evaluate().
 *
 *   node --import tsx gateway/src/policy/bench.ts
 */
import { performance } from 'node:perf_hooks';
import { evaluate, loadPolicy } from './compile.ts';
import type { EvalContext, Identity } from './compile.ts';
import type { StatementAnalysis, StatementFeature } from '../sql/features.ts';

const POLICY = `
version: 1
defaults: { action: allow, unparsable: block }
rules:
  - { id: no-destructive-ddl-agents, match: { actor_kind: agent, features: { any: [drop, truncate] } }, block: { message: "Agents may not DROP or TRUNCATE" } }
  - { id: no-copy-program, match: { features: { any: [copy_program, copy_file] } }, block: true }
  - { id: no-alter-system, match: { features: { any: [alter_system] } }, block: true }
  - { id: no-kill, match: { functions: [pg_terminate_backend, pg_cancel_backend, "dblink*", "lo_*"] }, block: true }
  - { id: no-role-change-agents, match: { actor_kind: agent, features: { any: [role_change, role_admin, grant] } }, block: true }
  - { id: contractors-no-prod, match: { groups: ["contractor-*"], targets: ["prod-*"] }, block: true }
  - id: off-hours-dml
    match:
      targets: ["prod-*"]
      features: { any: [dml_without_where] }
      time: { days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00", timezone: Europe/Paris, outside: true }
    require_approval: { approver_groups: [dba], timeout_s: 600 }
  - { id: prod-ddl-approval, match: { targets: ["prod-*"], features: { any: [ddl] } }, require_approval: { approver_groups: [dba, sre], min_approvers: 2 } }
  - { id: secrets-approval, match: { relations: ["vault.*", "public.api_keys"] }, require_approval: { approver_groups: [security] } }
  - { id: dba-all, match: { groups: [dba] }, allow: true }
  - { id: agents-read, match: { actor_kind: agent, sub: ["svc-*"], features: { any: [read, transaction_control, session_setting] } }, allow: true }
  - { id: analysts-read, match: { groups: [analyst], features: { any: [read, cursor, prepared, copy_out] } }, allow: true }
  - { id: no-do-blocks, match: { features: { any: [do_block] } }, block: true }
  - { id: mask-email, match: { groups: [analyst] }, mask: { columns: [public.users.email, "crm.*.email"], strategy: partial, keep_last: 4 } }
  - { id: mask-ssn, mask: { columns: ["*.*.ssn"], strategy: "null" } }
  - { id: mask-card, mask: { columns: [billing.cards.pan], detectors: [card, iban], strategy: hash } }
  - { id: mask-phone, match: { actor_kind: agent }, mask: { columns: [public.users.phone], detectors: [phone, email], strategy: redact } }
  - { id: mask-secrets, mask: { detectors: [jwt, api_key, private_key], strategy: redact } }
  - { id: limit-agents, match: { actor_kind: agent }, limits: { max_duration_s: 900, max_rows: 100000 } }
  - { id: limit-analysts, match: { groups: [analyst] }, limits: { max_duration_s: 28800, max_rows: 1000000 } }
`;

const s = (features: StatementFeature[], relations: string[] = [], functions: string[] = []): StatementAnalysis => ({ text: '', kind: 'X', features, relations, functions });
const ids: Identity[] = [
  { sub: 'svc-reporting', groups: ['bots'], actor_kind: 'agent' },
  { sub: 'alice@example.com', groups: ['analyst', 'staff'], actor_kind: 'human' },
  { sub: 'bob@example.com', groups: ['dba'], actor_kind: 'human' },
  { sub: 'eve@example.com', groups: ['contractor-acme'], actor_kind: 'human' },
];
const stmts = [
  s(['read'], ['public.users', 'public.orders']),
  s(['write', 'dml_without_where'], ['public.orders']),
  s(['ddl', 'drop'], ['public.tmp']),
  s(['read', 'dangerous_function'], [], ['pg_terminate_backend']),
  s(['read'], ['vault.tokens']),
  s(['transaction_control']),
  s(['unparsable']),
  s(['read', 'function_call'], ['crm.contacts'], ['public.my_fn']),
];
const ctxs: EvalContext[] = [];
for (const identity of ids) for (const statement of stmts) for (const target_id of ['prod-eu', 'staging']) ctxs.push({ identity, target_id, now: new Date('2024-06-12T17:30:00Z'), statement });

let t0 = performance.now();
const compiled = loadPolicy(POLICY, 'bench');
const compileMs = performance.now() - t0;

// Warm up, then measure; `now` advances one second per pass over the mixes, so the per-minute
// clock memo is refreshed now and then, as in a real gateway.
let sink = 0;
for (let i = 0; i < 200_000; i++) sink += evaluate(compiled, ctxs[i % ctxs.length]).mask.length;
const N = 2_000_000;
const base = Date.parse('2024-06-12T17:30:00Z');
t0 = performance.now();
for (let i = 0; i < N; i++) {
  const k = i % ctxs.length;
  if (k === 0) {
    const now = new Date(base + (i / ctxs.length) * 1000);
    for (const c of ctxs) c.now = now;
  }
  sink += evaluate(compiled, ctxs[k]).mask.length;
}
const us = ((performance.now() - t0) * 1000) / N;
console.log(`policy: ${compiled.policy.rules.length} rules, compiled in ${compileMs.toFixed(1)} ms`);
console.log(`evaluate: ${us.toFixed(3)} µs/eval (${N} evals over ${ctxs.length} identity×statement×target mixes; sink ${sink})`);
