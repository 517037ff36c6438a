import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, loadPolicy } from './compile.ts';
import { resolveMask } from './mask.ts';
import { agent, alice, ctx, dba, stmt, UNPARSABLE } from './testkit.ts';

/** A one-rule policy: `block` when `match` holds. */
function blockWhen(match: string): ReturnType<typeof loadPolicy> {
  return loadPolicy(`version: 1\nrules:\n  - id: r\n    match: ${match}\n    block: true\n`);
}

const READ = stmt(['read'], ['public.orders']);

test('match on sub: globs and literals, case-sensitive', () => {
  const p = blockWhen('{ sub: ["svc-*", "alice@example.com"] }');
  assert.equal(evaluate(p, ctx(agent, READ)).action, 'block');
  assert.equal(evaluate(p, ctx(alice, READ)).action, 'block');
  assert.equal(evaluate(p, ctx(dba, READ)).action, 'allow');
  assert.equal(evaluate(p, ctx({ ...alice, sub: 'ALICE@example.com' }, READ)).action, 'allow');
});

test('match on groups: any of the identity groups against any pattern', () => {
  const p = blockWhen('{ groups: [contractors, "ana*"] }');
  assert.equal(evaluate(p, ctx(alice, READ)).action, 'block'); // analyst
  assert.equal(evaluate(p, ctx(dba, READ)).action, 'allow');
  assert.equal(evaluate(p, ctx({ ...dba, groups: [] }, READ)).action, 'allow');
});

test('match on actor_kind', () => {
  const p = blockWhen('{ actor_kind: agent }');
  assert.equal(evaluate(p, ctx(agent, READ)).action, 'block');
  assert.equal(evaluate(p, ctx(alice, READ)).action, 'allow');
});

test('match on targets', () => {
  const p = blockWhen('{ targets: ["prod-*", staging] }');
  assert.equal(evaluate(p, ctx(alice, READ, 'prod-us')).action, 'block');
  assert.equal(evaluate(p, ctx(alice, READ, 'staging')).action, 'block');
  assert.equal(evaluate(p, ctx(alice, READ, 'staging-2')).action, 'allow');
  assert.equal(evaluate(p, ctx(alice, READ, 'dev')).action, 'allow');
});

test('match on features: any-of, all-of, both', () => {
  const any = blockWhen('{ features: { any: [drop, truncate] } }');
  assert.equal(evaluate(any, ctx(alice, stmt(['ddl', 'drop'], [], [], 'DropStmt'))).action, 'block');
  assert.equal(evaluate(any, ctx(alice, stmt(['ddl', 'truncate']))).action, 'block');
  assert.equal(evaluate(any, ctx(alice, stmt(['ddl', 'alter']))).action, 'allow');
  const all = blockWhen('{ features: { all: [write, dml_without_where] } }');
  assert.equal(evaluate(all, ctx(alice, stmt(['write', 'dml_without_where']))).action, 'block');
  assert.equal(evaluate(all, ctx(alice, stmt(['write']))).action, 'allow');
  const both = blockWhen('{ features: { any: [read, write], all: [function_call] } }');
  assert.equal(evaluate(both, ctx(alice, stmt(['read', 'function_call']))).action, 'block');
  assert.equal(evaluate(both, ctx(alice, stmt(['read']))).action, 'allow');
  assert.equal(evaluate(both, ctx(alice, stmt(['function_call']))).action, 'allow');
});

test('match on relations: schema-qualified globs, case-insensitive, unqualified names match any schema', () => {
  const p = blockWhen('{ relations: ["public.users", "billing.*", "secrets"] }');
  const rel = (...r: string[]) => evaluate(p, ctx(alice, stmt(['read'], r))).action;
  assert.equal(rel('public.users'), 'block');
  assert.equal(rel('PUBLIC.Users'), 'block');
  assert.equal(rel('users'), 'block'); // search_path unknown: the safe side
  assert.equal(rel('other.users'), 'allow');
  assert.equal(rel('billing.invoices'), 'block');
  assert.equal(rel('billing_archive.invoices'), 'allow');
  assert.equal(rel('vault.secrets'), 'block'); // a bare pattern matches in any schema
  assert.equal(rel('mydb.public.users'), 'block'); // catalog-qualified
  assert.equal(rel('public.orders', 'public.users'), 'block'); // any relation
  assert.equal(rel('public.orders'), 'allow');
  assert.equal(rel(), 'allow');
});

test('match on functions', () => {
  const p = blockWhen('{ functions: ["pg_terminate_backend", "dblink*", "pg_catalog.lo_*"] }');
  const fn = (...f: string[]) => evaluate(p, ctx(alice, stmt(['read', 'dangerous_function'], [], f))).action;
  assert.equal(fn('pg_terminate_backend'), 'block');
  assert.equal(fn('pg_catalog.pg_terminate_backend'), 'block');
  assert.equal(fn('dblink_exec'), 'block');
  assert.equal(fn('lo_export'), 'block');
  assert.equal(fn('public.lo_export'), 'allow');
  assert.equal(fn('now'), 'allow');
});

test('statement conditions never match without a statement (session start); others do', () => {
  const p = loadPolicy('version: 1\nrules:\n  - { id: f, match: { features: { any: [read] } }, block: true }\n  - { id: a, match: { actor_kind: agent }, block: true }\n');
  assert.equal(evaluate(p, ctx(alice)).action, 'allow');
  assert.equal(evaluate(p, ctx(agent)).rule_id, 'a');
});

test('every condition of a rule must hold (AND)', () => {
  const p = blockWhen('{ actor_kind: agent, targets: ["prod-*"], features: { any: [drop] } }');
  assert.equal(evaluate(p, ctx(agent, stmt(['ddl', 'drop']), 'prod-eu')).action, 'block');
  assert.equal(evaluate(p, ctx(agent, stmt(['ddl', 'drop']), 'dev')).action, 'allow');
  assert.equal(evaluate(p, ctx(alice, stmt(['ddl', 'drop']), 'prod-eu')).action, 'allow');
  assert.equal(evaluate(p, ctx(agent, READ, 'prod-eu')).action, 'allow');
});

test('block: default SQLSTATE 42501 and a message naming the rule; custom sqlstate and message', () => {
  const p = loadPolicy(
    'version: 1\nrules:\n  - { id: no-drop, match: { features: { any: [drop] } }, block: true }\n  - { id: no-copy-prog, match: { features: { any: [copy_program] } }, block: { sqlstate: "0A000", message: "COPY PROGRAM is disabled" } }\n',
  );
  const d1 = evaluate(p, ctx(agent, stmt(['ddl', 'drop'])));
  assert.deepEqual([d1.action, d1.rule_id, d1.reason], ['block', 'no-drop', 'rule']);
  assert.deepEqual(d1.block, { sqlstate: '42501', message: 'statement blocked by policy rule "no-drop"', code: 'GW_ERR_POLICY_BLOCKED' });
  const d2 = evaluate(p, ctx(agent, stmt(['copy_program'])));
  assert.deepEqual(d2.block, { sqlstate: '0A000', message: 'COPY PROGRAM is disabled (policy rule "no-copy-prog")', code: 'GW_ERR_POLICY_BLOCKED' });
  assert.equal(evaluate(p, ctx(agent, READ)).block, undefined);
});

test('require_approval carries its settings with defaults', () => {
  const p = loadPolicy('version: 1\nrules:\n  - id: appr\n    match: { features: { any: [dml_without_where] } }\n    require_approval: { approver_groups: [dba, "sre-*"], min_approvers: 2, timeout_s: 60 }\n');
  const d = evaluate(p, ctx(alice, stmt(['write', 'dml_without_where'])));
  assert.equal(d.action, 'require_approval');
  assert.equal(d.rule_id, 'appr');
  assert.deepEqual(d.approval, { approver_groups: ['dba', 'sre-*'], min_approvers: 2, timeout_s: 60, allow_self_approval: false });
  assert.equal(evaluate(p, ctx(alice, stmt(['write']))).action, 'allow');
});

test('allow stops the search: a later block does not apply', () => {
  const p = loadPolicy('version: 1\nrules:\n  - { id: dba-ok, match: { groups: [dba] }, allow: true }\n  - { id: no-ddl, match: { features: { any: [ddl] } }, block: true }\n');
  assert.deepEqual([evaluate(p, ctx(dba, stmt(['ddl']))).action, evaluate(p, ctx(dba, stmt(['ddl']))).rule_id], ['allow', 'dba-ok']);
  assert.equal(evaluate(p, ctx(alice, stmt(['ddl']))).rule_id, 'no-ddl');
});

test('precedence: the first matching decision rule in file order wins, whatever its action', () => {
  const rules = [
    '  - { id: approve-writes, match: { features: { any: [write] } }, require_approval: { approver_groups: [dba] } }',
    '  - { id: block-agents, match: { actor_kind: agent }, block: true }',
  ];
  const p1 = loadPolicy(`version: 1\nrules:\n${rules.join('\n')}\n`);
  const p2 = loadPolicy(`version: 1\nrules:\n${[...rules].reverse().join('\n')}\n`);
  const write = ctx(agent, stmt(['write']));
  assert.equal(evaluate(p1, write).rule_id, 'approve-writes');
  assert.equal(evaluate(p2, write).rule_id, 'block-agents');
  assert.equal(evaluate(p1, ctx(agent, READ)).rule_id, 'block-agents');
});

test('no decision rule matches: defaults.action (allow by default, block when configured)', () => {
  const allow = loadPolicy('version: 1\nrules:\n  - { id: x, match: { actor_kind: agent }, block: true }\n');
  assert.deepEqual([evaluate(allow, ctx(alice, READ)).action, evaluate(allow, ctx(alice, READ)).reason, evaluate(allow, ctx(alice, READ)).rule_id], ['allow', 'default', null]);
  const block = loadPolicy('version: 1\ndefaults: { action: block }\nrules:\n  - { id: ok, match: { groups: [analyst] }, allow: true }\n');
  const d = evaluate(block, ctx(dba, READ));
  assert.deepEqual([d.action, d.reason, d.rule_id, d.block?.code], ['block', 'default', null, 'GW_ERR_POLICY_BLOCKED']);
  assert.match(d.block?.message ?? '', /no rule allows it/);
  assert.equal(evaluate(block, ctx(alice, READ)).action, 'allow');
});

test('unparsable: blocked on a governed target even when a broad allow matches; allowed on an ungoverned one', () => {
  const p = loadPolicy('version: 1\nrules:\n  - { id: dba-ok, match: { targets: ["prod-*"], groups: [dba] }, allow: true }\n');
  const d = evaluate(p, ctx(dba, UNPARSABLE, 'prod-eu'));
  assert.deepEqual([d.action, d.reason, d.rule_id, d.block?.code, d.block?.sqlstate], ['block', 'unparsable', null, 'GW_ERR_POLICY_UNPARSABLE', '42501']);
  assert.equal(evaluate(p, ctx(dba, UNPARSABLE, 'dev')).action, 'allow'); // no rule applies to dev
  assert.equal(evaluate(p, ctx(dba, READ, 'prod-eu')).rule_id, 'dba-ok');
});

test('unparsable: a rule naming the feature decides; defaults.unparsable: allow', () => {
  const named = loadPolicy('version: 1\nrules:\n  - { id: dev-ok, match: { targets: [dev], features: { any: [unparsable] } }, allow: true }\n  - { id: any, mask: { detectors: [email] } }\n');
  assert.equal(evaluate(named, ctx(dba, UNPARSABLE, 'dev')).rule_id, 'dev-ok');
  assert.equal(evaluate(named, ctx(dba, UNPARSABLE, 'prod')).reason, 'unparsable'); // governed by the mask rule
  const lax = loadPolicy('version: 1\ndefaults: { unparsable: allow }\nrules:\n  - { id: x, block: true, match: { actor_kind: agent } }\n');
  const d = evaluate(lax, ctx(alice, UNPARSABLE));
  assert.deepEqual([d.action, d.reason], ['allow', 'unparsable']);
});

test('mask directives accumulate from every matching rule, after and before the decision', () => {
  const p = loadPolicy(
    [
      'version: 1',
      'rules:',
      '  - { id: m-email, match: { groups: [analyst] }, mask: { columns: [public.users.email], strategy: partial, keep_last: 4 } }',
      '  - { id: analysts-read, match: { groups: [analyst] }, allow: true }',
      '  - { id: m-cards, mask: { detectors: [card, iban], strategy: redact } }',
      '  - { id: m-agents, match: { actor_kind: agent }, mask: { columns: ["*.*.ssn"], strategy: "null" } }',
      '  - { id: m-users-rel, match: { relations: [public.users] }, mask: { columns: ["users.email"], strategy: hash } }',
      '',
    ].join('\n'),
  );
  const d = evaluate(p, ctx(alice, stmt(['read'], ['public.users'])));
  assert.equal(d.rule_id, 'analysts-read');
  assert.deepEqual(d.mask.map((m) => m.rule_id), ['m-email', 'm-cards', 'm-users-rel']);
  assert.equal(d.mask[0].keep_last, 4);
  assert.equal(d.mask[0].matchColumn('public.users.email'), true);
  assert.equal(d.mask[0].matchColumn('public.users.name'), false);
  assert.equal(d.mask[0].matchColumn('other.users.email'), false);
  assert.equal(d.mask[2].matchColumn('other.users.email'), true); // 2-part pattern: any schema
  const resolved = resolveMask(d.mask);
  assert.deepEqual(resolved.column('public.users.email'), { strategy: 'hash', rule_id: 'm-users-rel' }); // hash beats partial
  assert.equal(resolved.column('public.users.name'), undefined);
  assert.deepEqual([...resolved.detectors.keys()], ['card', 'iban']);
  assert.deepEqual(evaluate(p, ctx(dba, READ)).mask.map((m) => m.rule_id), ['m-cards']);
  const a = evaluate(p, ctx(agent, READ));
  assert.deepEqual(resolveMask(a.mask).column('x.y.SSN'), { strategy: 'null', rule_id: 'm-agents' });
});

test('a blocking rule does not stop masks; a block-and-mask-free statement gets the frozen empty list', () => {
  const p = loadPolicy('version: 1\nrules:\n  - { id: b, match: { actor_kind: agent }, block: true }\n  - { id: m, match: { actor_kind: agent }, mask: { detectors: [jwt] } }\n');
  assert.deepEqual(evaluate(p, ctx(agent, READ)).mask.map((m) => m.rule_id), ['m']);
  const none = evaluate(p, ctx(alice, READ));
  assert.equal(none.mask.length, 0);
  assert.ok(Object.isFrozen(none.mask));
});

test('mask strategy order: null > redact > hash > partial (fewer kept is stronger), ties keep file order', () => {
  const p = loadPolicy(
    [
      'version: 1',
      'rules:',
      '  - { id: p6, mask: { columns: [t.c], detectors: [phone], strategy: partial, keep_last: 6 } }',
      '  - { id: p2, mask: { columns: [t.c], detectors: [phone], strategy: partial, keep_last: 2 } }',
      '  - { id: p2b, mask: { columns: [t.c], strategy: partial, keep_last: 2 } }',
      '  - { id: r, mask: { columns: [t.d], detectors: [email], strategy: redact } }',
      '  - { id: n, mask: { columns: [t.d], strategy: "null" } }',
      '  - { id: r2, mask: { detectors: [email], strategy: partial } }',
      '',
    ].join('\n'),
  );
  const m = resolveMask(evaluate(p, ctx(alice, READ)).mask);
  assert.deepEqual(m.column('s.t.c'), { strategy: 'partial', keep_last: 2, rule_id: 'p2' });
  assert.deepEqual(m.column('s.t.d'), { strategy: 'null', rule_id: 'n' });
  assert.deepEqual(m.detectors.get('phone'), { strategy: 'partial', keep_last: 2, rule_id: 'p2' });
  assert.deepEqual(m.detectors.get('email'), { strategy: 'redact', rule_id: 'r' });
});

test('limits: every matching rule applies, the smallest value of each wins, with its rule id', () => {
  const p = loadPolicy(
    [
      'version: 1',
      'rules:',
      '  - { id: all, limits: { max_duration_s: 3600, max_rows: 100000 } }',
      '  - { id: agents, match: { actor_kind: agent }, limits: { max_duration_s: 600 } }',
      '  - { id: analysts, match: { groups: [analyst] }, limits: { max_rows: 500 } }',
      '',
    ].join('\n'),
  );
  assert.deepEqual(evaluate(p, ctx(agent)).limits, { max_duration_s: { value: 600, rule_id: 'agents' }, max_rows: { value: 100000, rule_id: 'all' } });
  assert.deepEqual(evaluate(p, ctx(alice, READ)).limits, { max_duration_s: { value: 3600, rule_id: 'all' }, max_rows: { value: 500, rule_id: 'analysts' } });
  const none = loadPolicy('version: 1\nrules: []\n');
  assert.deepEqual(evaluate(none, ctx(alice)).limits, {});
});

test('a rule may decide and carry mask and limits together', () => {
  const p = loadPolicy('version: 1\nrules:\n  - id: analysts\n    match: { groups: [analyst] }\n    allow: true\n    mask: { columns: [users.email] }\n    limits: { max_rows: 10 }\n');
  const d = evaluate(p, ctx(alice, READ));
  assert.deepEqual([d.action, d.rule_id, d.mask.length, d.limits.max_rows?.value], ['allow', 'analysts', 1, 10]);
});

test('an empty policy governs nothing and allows everything, including unparsable', () => {
  const p = loadPolicy('version: 1\n');
  assert.equal(evaluate(p, ctx(agent, stmt(['ddl', 'drop']))).action, 'allow');
  assert.equal(evaluate(p, ctx(agent, UNPARSABLE)).action, 'allow');
  assert.equal(p.forTarget('prod-eu').governed, false);
});
