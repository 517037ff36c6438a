/** The example in docs/policy.md stays valid and does what the text says. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { evaluate, loadPolicy } from './compile.ts';
import { resolveMask } from './mask.ts';
import { agent, alice, ctx, dba, stmt, UNPARSABLE } from './testkit.ts';

const doc = readFileSync(new URL('../../../docs/policy.md', import.meta.url), 'utf8');
const example = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';

test('the docs/policy.md example loads and behaves as documented', () => {
  const p = loadPolicy(example, 'docs/policy.md');
  assert.equal(p.policy.rules.length, 7);
  const wedEvening = new Date('2024-06-12T18:00:00Z'); // 20:00 in Paris
  const wedNoon = new Date('2024-06-12T10:00:00Z');
  const drop = evaluate(p, ctx(agent, stmt(['ddl', 'drop'])));
  assert.equal(drop.rule_id, 'no-destructive-ddl-for-agents');
  assert.equal(drop.block?.message, 'Agents may not DROP or TRUNCATE (policy rule "no-destructive-ddl-for-agents")');
  assert.equal(evaluate(p, ctx(dba, stmt(['copy_program']))).rule_id, 'no-copy-program');
  const dml = stmt(['write', 'dml_without_where']);
  assert.equal(evaluate(p, ctx(dba, dml, 'prod-eu', wedEvening)).action, 'require_approval');
  assert.equal(evaluate(p, ctx(dba, dml, 'prod-eu', wedNoon)).rule_id, 'dba-may-do-anything-else');
  assert.equal(evaluate(p, ctx(alice, dml, 'prod-eu', wedNoon)).reason, 'default');
  const read = evaluate(p, ctx(alice, stmt(['read'], ['public.users'])));
  const m = resolveMask(read.mask);
  assert.deepEqual(m.column('public.users.email'), { strategy: 'partial', keep_last: 4, rule_id: 'mask-email-for-analysts' });
  assert.deepEqual(m.detectors.get('card'), { strategy: 'redact', rule_id: 'mask-cards-for-analysts' });
  assert.equal(evaluate(p, ctx(agent)).limits.max_duration_s?.value, 900);
  assert.equal(evaluate(p, ctx(dba, UNPARSABLE)).block?.code, 'GW_ERR_POLICY_UNPARSABLE');
});
