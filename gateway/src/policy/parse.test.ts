import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, yamlPath } from './parse.ts';
import { PolicyError, isPolicyError, type PolicyProblem } from './errors.ts';

function problemsOf(text: string): readonly PolicyProblem[] {
  try {
    parsePolicy(text, 'test.yaml');
  } catch (err) {
    assert.ok(isPolicyError(err), String(err));
    return err.problems;
  }
  assert.fail('expected a PolicyError');
}

test('a minimal policy gets every default and is deeply frozen', () => {
  const p = parsePolicy('version: 1\nrules:\n  - id: r1\n    block: true\n  - id: r2\n    require_approval: { approver_groups: [dba] }\n    match: { time: { from: "09:00" } }\n');
  assert.deepEqual(p.defaults, { action: 'allow', unparsable: 'block' });
  assert.deepEqual(p.rules[0].block, { sqlstate: '42501' });
  assert.deepEqual(p.rules[0].match, {});
  assert.deepEqual(p.rules[1].require_approval, { approver_groups: ['dba'], min_approvers: 1, timeout_s: 300, allow_self_approval: false });
  assert.deepEqual(p.rules[1].match.time, { from: '09:00', to: '24:00', timezone: 'UTC', outside: false });
  assert.ok(Object.isFrozen(p) && Object.isFrozen(p.rules) && Object.isFrozen(p.rules[1].require_approval?.approver_groups));
  assert.throws(() => (p.rules as unknown as unknown[]).push({}), TypeError);
});

test('mask and limits defaults', () => {
  const p = parsePolicy('version: 1\nrules:\n  - id: m\n    mask: { columns: [users.email] }\n    limits: { max_rows: 10 }\n');
  assert.equal(p.rules[0].mask?.strategy, 'redact');
  assert.deepEqual(p.rules[0].limits, { max_rows: 10 });
});

test('an invalid file reports every problem at once, each with its YAML path and line', () => {
  const text = [
    'version: 1', // 1
    'defaults: { action: allow, colour: red }', // 2
    'rules:', // 3
    '  - id: tz', // 4
    '    match:', // 5
    '      time: { timezone: Mars/Olympus, from: "09:00", to: "18:00" }', // 6
    '    block: true', // 7
    '  - id: feat', // 8
    '    match: { features: { any: [drop, dorp] } }', // 9
    '    block: { message: no }', // 10
    '  - id: glob', // 11
    '    match: { targets: ["prod-[eu"], sub: ["svc-{a,b}"] }', // 12
    '    allow: true', // 13
    '  - id: appr', // 14
    '    require_approval: { approver_groups: [dba], min_approvers: 0 }', // 15
    '    whatever: 1', // 16
  ].join('\n');
  const problems = problemsOf(text);
  const byPath = new Map(problems.map((p) => [p.path, p]));
  const expect: [string, number, RegExp][] = [
    ['defaults.colour', 2, /unknown key/],
    ['rules[0].match.time.timezone', 6, /unknown time zone "Mars\/Olympus"/],
    ['rules[1].match.features.any[1]', 9, /expected one of .*"drop".*got "dorp"/],
    ['rules[2].match.targets[0]', 12, /bad glob "prod-\[eu": unclosed '\['/],
    ['rules[2].match.sub[0]', 12, /braces are not supported/],
    ['rules[3].require_approval.min_approvers', 15, /greater or equal to 1/],
    ['rules[3].whatever', 16, /unknown key/],
  ];
  for (const [path, line, re] of expect) {
    const p = byPath.get(path);
    assert.ok(p, `missing problem at ${path}; got ${problems.map((x) => x.path).join(', ')}`);
    assert.equal(p.line, line, path);
    assert.match(p.message, re, path);
  }
  assert.equal(problems.length, expect.length, problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
});

test('the error message lists every problem and names the file', () => {
  try {
    parsePolicy('version: 2\nrules: [{ id: x }]\n', 'prod.yaml');
    assert.fail('expected an error');
  } catch (err) {
    assert.ok(err instanceof PolicyError);
    assert.equal(err.code, 'GW_ERR_POLICY_INVALID');
    assert.equal(err.retriable, false);
    assert.match(err.message, /prod\.yaml: 2 problem\(s\)/);
    assert.match(err.message, /version \(line 1, col 10\): expected 1; got 2/);
    assert.match(err.message, /rules\[0\] \(line 2, col 9\): the rule has no action/);
  }
});

test('semantic checks: decisions, ids, masks, limits, windows, dotted patterns', () => {
  const problems = problemsOf(
    [
      'version: 1',
      'rules:',
      '  - { id: two, allow: true, block: true }',
      '  - { id: two, mask: { strategy: partial, keep_last: 2, columns: [email] } }',
      '  - { id: lim, match: { features: { any: [read] } }, limits: { max_rows: 5 } }',
      '  - { id: nolim, limits: {} }',
      '  - { id: win, match: { time: { from: "10:00", to: "10:00" }, features: {} }, allow: true }',
      '  - { id: rel, match: { relations: ["public."], functions: ["a.b.c"] }, allow: true }',
      '  - { id: "bad id!", block: { sqlstate: "4250" } }',
      '  - { id: det, mask: { detectors: [card, retina] } }',
    ].join('\n'),
  );
  const got = problems.map((p) => `${p.path}: ${p.message}`);
  const want = [
    /^rules\[0\]: a rule takes at most one of allow, block, require_approval/,
    /^rules\[1\]\.id: duplicate rule id "two"/,
    /^rules\[1\]\.mask\.columns\[0\]: column pattern .* "email" must have 2 to 3/,
    /^rules\[2\]\.limits: limits are per session .*features/,
    /^rules\[3\]\.limits: limits needs max_duration_s or max_rows/,
    /^rules\[4\]\.match\.time: from and to are both 10:00/,
    /^rules\[4\]\.match\.features: features needs `any` or `all`/,
    /^rules\[5\]\.match\.relations\[0\]: relation pattern "public\." has an empty part/,
    /^rules\[5\]\.match\.functions\[0\]: function pattern "a\.b\.c" must have 1 to 2/,
    /^rules\[6\]\.id: expected letters, digits/,
    /^rules\[6\]\.block\.sqlstate: expected a five-character SQLSTATE/,
    /^rules\[7\]\.mask\.detectors\[1\]: expected one of "card".*got "retina"/,
  ];
  for (const re of want) assert.ok(got.some((g) => re.test(g)), `no problem matching ${re}\n${got.join('\n')}`);
  assert.equal(got.length, want.length, got.join('\n'));
});

test('YAML syntax errors and duplicate keys are GW_ERR_POLICY_SYNTAX with line numbers', () => {
  for (const text of ['version: 1\nrules: [\n', 'version: 1\nversion: 1\n']) {
    try {
      parsePolicy(text);
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(isPolicyError(err, 'GW_ERR_POLICY_SYNTAX'), String(err));
      assert.ok(err.problems.length >= 1 && err.problems.every((p) => typeof p.line === 'number'));
    }
  }
});

test('an empty file and a non-mapping are refused', () => {
  assert.match(problemsOf('')[0].message, /empty/);
  assert.match(problemsOf('# only a comment\n')[0].message, /empty/);
  assert.ok(problemsOf('- 1\n- 2\n').length >= 1);
});

test('alias bombs are refused', () => {
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]'].join('\n');
  assert.throws(() => parsePolicy(bomb), (err: unknown) => isPolicyError(err, 'GW_ERR_POLICY_SYNTAX'));
});

test('yamlPath quotes keys that are not identifiers', () => {
  assert.equal(yamlPath(['rules', 2, 'match', 'time']), 'rules[2].match.time');
  assert.equal(yamlPath(['a b', 0]), '["a b"][0]');
});
