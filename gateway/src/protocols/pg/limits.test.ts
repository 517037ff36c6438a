/**
 * Session limits of the policy (max_rows, max_duration_s) and the gateway chain's policy events
 * (policy.loaded at start and on reload, policy.rejected with every problem while the old policy
 * stays in force), through the real gateway against the real PostgreSQL.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { ChainedEvent, PolicyLimit, PolicyLoaded, PolicyRejected } from '@vigil/schemas';
import { startPolicyHarness, connect, RawPg, wire, until, errorFields, type PolicyHarness } from './testkit.ts';

const POLICY = `version: 1
rules:
  - id: rows-for-limited
    match: { sub: ['lim-*'] }
    limits: { max_rows: 5 }
  - id: short-sessions
    match: { sub: ['brief-*'] }
    limits: { max_duration_s: 1 }
  - id: no-drop
    match: { features: { any: [drop] } }
    block: true
`;

let ph: PolicyHarness;
before(async () => {
  ph = await startPolicyHarness(POLICY);
});
after(async () => ph.close());

const sessionEnd = (id: string) =>
  until(() => {
    const s = ph.h.session(id);
    return s.events.some((e) => e.type === 'session.ended') && s;
  }, 10_000, 'session end');

test('max_rows: rows up to the limit are delivered; the next one ends the session with FATAL 53400, as recorded', async () => {
  const c = await RawPg.login(ph.h.port, 'lim-ann', await ph.h.issuer.mint('lim-ann'));
  c.send(wire.query('SELECT g FROM generate_series(1, 3) g'));
  const first = await c.until('Z');
  assert.equal(first.filter((m) => m[0] === 0x44).length, 3);
  c.send(wire.query('SELECT g FROM generate_series(1, 10) g'));
  const rest = await c.closedWith(10_000);
  assert.equal(rest.filter((m) => m[0] === 0x44).length, 2, 'two more rows reach the client: five in all');
  const fatal = rest.find((m) => m[0] === 0x45)!;
  assert.equal(errorFields(fatal).S, 'FATAL');
  assert.equal(errorFields(fatal).C, '53400');
  assert.match(errorFields(fatal).M!, /row limit \(5 rows returned\) of policy rule "rows-for-limited"/);
  const [id] = ph.h.sessionsOf('lim-ann');
  const s = await sessionEnd(id!);
  assert.ok(s.chainOk, s.problem);
  const limit = s.events.find((e): e is PolicyLimit & ChainedEvent => e.type === 'policy.limit')!;
  assert.deepEqual([limit.rule_id, limit.limit, limit.value, limit.observed], ['rows-for-limited', 'max_rows', 5, 5]);
  const ended = s.events.at(-1)!;
  assert.equal(ended.type === 'session.ended' && ended.reason, 'policy_limit');
  // What was recorded is what the client got: five DataRows toward the client, then the FATAL.
  const s2c = s.events.flatMap((e) => (e.type === 'frame' && e.direction === 's2c' ? [e.msg_type] : []));
  assert.equal(s2c.filter((t) => t === 'D').length, 5);
  assert.equal(s2c.at(-1), 'E');
});

test('max_duration_s: the session is ended when its time is up; other sessions are not limited', async () => {
  const limited = await connect(ph.h, 'brief-bo');
  const errors: { code?: string; message: string }[] = [];
  limited.on('error', (e) => errors.push(e as { code?: string; message: string }));
  const free = await connect(ph.h, 'carl');
  await until(() => errors.length > 0, 10_000, 'the limited session to end');
  assert.equal(errors[0]!.code, '53400');
  assert.match(errors[0]!.message, /duration limit \(1 s\) of policy rule "short-sessions"/);
  const { rows } = await free.query('SELECT g FROM generate_series(1, 100) g');
  assert.equal(rows.length, 100, 'no row limit for others');
  await free.end();
  const [id] = ph.h.sessionsOf('brief-bo');
  const s = await sessionEnd(id!);
  const limit = s.events.find((e): e is PolicyLimit & ChainedEvent => e.type === 'policy.limit')!;
  assert.equal(limit.limit, 'max_duration_s');
  assert.ok(limit.observed >= 1);
});

test('policy events: loaded at start; a bad reload is rejected with every problem and the old policy stays; a good one is loaded', async () => {
  const gwEvents = () => ph.h.events().filter((e) => e.session_id.startsWith('gateway:gw-test:'));
  const start = gwEvents().find((e): e is PolicyLoaded & ChainedEvent => e.type === 'policy.loaded')!;
  assert.equal(start.reason, 'start');
  assert.equal(start.rules, 3);
  writeFileSync(ph.policyFile, 'version: 1\nrules:\n  - id: bad one\n    match: { features: { any: [nope] } }\n    block: true\n');
  const rejected = await until(() => gwEvents().find((e): e is PolicyRejected & ChainedEvent => e.type === 'policy.rejected'), 15_000, 'policy.rejected');
  assert.equal(rejected.code, 'GW_ERR_POLICY_INVALID');
  assert.ok(rejected.problems.length >= 2, 'every problem listed (rule id and feature)');
  assert.ok(rejected.problems.some((p) => p.path.includes('id')));
  assert.ok(rejected.problems.some((p) => p.path.includes('features')));
  assert.equal(rejected.in_force_digest, start.digest);
  const c = await connect(ph.h, 'dora');
  await assert.rejects(c.query('DROP TABLE vigil_never_there'), /no-drop/, 'the old policy is still enforced');
  writeFileSync(ph.policyFile, 'version: 1\nrules:\n  - id: allow-all\n    allow: true\n');
  const reloaded = await until(() => gwEvents().find((e): e is PolicyLoaded & ChainedEvent => e.type === 'policy.loaded' && e.reason === 'reload'), 15_000, 'policy.loaded reload');
  assert.equal(reloaded.rules, 1);
  assert.notEqual(reloaded.digest, start.digest);
  await assert.rejects(c.query('DROP TABLE vigil_never_there'), /does not exist/, 'the new policy allows it: the target answers');
  await c.end();
  const raw = ph.h.producer.records.filter((r) => r.key === start.session_id);
  assert.ok(raw.length >= 3);
  assert.ok(ph.h.session(start.session_id).chainOk, 'the gateway chain verifies');
  // Nothing of the file's values leaks into the rejection beyond key paths and messages.
  assert.ok(!JSON.stringify(rejected).includes('bad one\\n'), 'no raw file text');
});
