/**
 * Integration: masking.mask_before_log and masking.hash_key through the real gateway. With
 * mask_before_log the event log's c2s frames (statement text, Bind parameters) hold no value a
 * detector recognises; the keyed hash joins equal values and never shows the key or the value.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startPolicyHarness, connect, type PolicyHarness } from './testkit.ts';

const S = `maskl_${randomBytes(4).toString('hex')}`;
const KEY = `hash-key-${randomBytes(8).toString('hex')}`;
const POLICY = `version: 1
rules:
  - id: hash-email
    mask: { columns: ['${S}.people.email'], strategy: hash }
  - id: ssn-detector
    mask: { detectors: [us_ssn, email], strategy: redact }
`;
let ph: PolicyHarness;

before(async () => {
  ph = await startPolicyHarness(POLICY, { masking: { hash_key: { env: 'VIGIL_TEST_MASK_KEY' }, mask_before_log: true }, env: { ...process.env, VIGIL_TEST_MASK_KEY: KEY } });
  await ph.direct.query(`CREATE SCHEMA ${S}; CREATE TABLE ${S}.people (id int, email text); INSERT INTO ${S}.people VALUES (1, 'x@corp.example'), (2, 'x@corp.example'), (3, 'y@corp.example')`);
});
after(async () => {
  await ph.direct.query(`DROP SCHEMA ${S} CASCADE`);
  await ph.close();
});

test('hash: equal values give equal tokens, different values differ; no value or key reaches the client', async () => {
  const c = await connect(ph.h, 'bob');
  const r = await c.query(`SELECT id, email FROM ${S}.people ORDER BY id`);
  await c.end();
  const [a, b, d] = r.rows.map((x) => x.email as string);
  assert.match(a!, /^hmac:[0-9a-f]{32}$/);
  assert.equal(a, b);
  assert.notEqual(a, d);
  assert.ok(!JSON.stringify(r.rows).includes('corp.example') && !JSON.stringify(r.rows).includes(KEY));
});

test('mask_before_log: statement text and Bind parameters are masked in the event log, and the key is nowhere', async () => {
  const c = await connect(ph.h, 'carol');
  await c.query(`SELECT '123-45-6789' AS s, 'z@corp.example' AS e`);
  const p = await c.query({ text: 'SELECT $1::text AS p', values: ['234-56-7890'] });
  assert.equal(p.rows[0].p, '[REDACTED:us_ssn]', 'the result is masked by the detector too');
  await c.end();
  await ph.h.sink.drain();
  const all = Buffer.concat(ph.h.producer.records.map((r) => Buffer.from(r.value)));
  for (const raw of ['123-45-6789', '234-56-7890', 'z@corp.example', KEY]) assert.ok(!all.includes(raw), `${raw} in the event log`);
  const c2s = ph.h.events().filter((e) => e.type === 'frame' && e.direction === 'c2s' && (e.msg_type === 'Q' || e.msg_type === 'B'));
  assert.ok(c2s.some((e) => e.type === 'frame' && Buffer.from(e.data).includes('[REDACTED:us_ssn]')));
});
