/**
 * Integration: masking.mask_before_log and masking.hash_key through the real gateway. With
 * mask_before_log the event log's c2s frames (statement text, Bind parameters, COPY FROM data) and
 * the statements of policy.blocked hold no value a detector recognises nor a value written for a
 * masked column; the keyed hash joins equal values and never shows the key or the value.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startPolicyHarness, connect, RawPg, wire, type PolicyHarness } from './testkit.ts';

const S = `maskl_${randomBytes(4).toString('hex')}`;
const KEY = `hash-key-${randomBytes(8).toString('hex')}`;
const POLICY = `version: 1
rules:
  - id: hash-email
    mask: { columns: ['${S}.people.email'], strategy: hash }
  - id: ssn-detector
    mask: { detectors: [us_ssn, email], strategy: redact }
  - id: secret-col
    mask: { columns: ['${S}.people.secret'], strategy: redact }
`;
let ph: PolicyHarness;

before(async () => {
  ph = await startPolicyHarness(POLICY, { masking: { hash_key: { env: 'VIGIL_TEST_MASK_KEY' }, mask_before_log: true }, env: { ...process.env, VIGIL_TEST_MASK_KEY: KEY } });
  await ph.direct.query(`CREATE SCHEMA ${S}; CREATE TABLE ${S}.people (id int, email text, secret text); INSERT INTO ${S}.people VALUES (1, 'x@corp.example'), (2, 'x@corp.example'), (3, 'y@corp.example')`);
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

test('mask_before_log: literals and parameters written to or compared with a masked column, COPY FROM data and blocked statements are masked in the log', async () => {
  const SECRET = 'PLAIN-SECRET-7781'; // no detector recognises it: only the column rule can hide it
  const c = await connect(ph.h, 'dave');
  await c.query(`SELECT id FROM ${S}.people WHERE secret = '${SECRET}'`);
  await c.query(`UPDATE ${S}.people SET secret = '${SECRET}' WHERE id = 3`);
  await c.query({ text: `SELECT id FROM ${S}.people WHERE secret = $1 AND id = $2`, values: [SECRET, 1] });
  await c.query({ text: `INSERT INTO ${S}.people (id, secret) VALUES ($1, $2)`, values: [9, SECRET] });
  await assert.rejects(c.query(`CREATE TEMP TABLE laundry AS SELECT secret FROM ${S}.people WHERE secret <> '${SECRET}'`), /masked column/);
  await c.end();
  // COPY FROM STDIN, a row split across two CopyData messages and a last line without newline.
  const r = await RawPg.login(ph.h.port, 'dave', await ph.h.issuer.mint('dave'), 'main', {});
  r.send(wire.query(`COPY ${S}.people (id, secret) FROM STDIN`));
  await r.until('G');
  const copyData = (s: string) => {
    const b = Buffer.from(s);
    const m = Buffer.alloc(5 + b.length);
    m[0] = 0x64;
    m.writeUInt32BE(4 + b.length, 1);
    b.copy(m, 5);
    return m;
  };
  const done = Buffer.from([0x63, 0, 0, 0, 4]);
  r.send(Buffer.concat([copyData(`10\tPLAIN-SEC`), copyData(`RET-7781\n11\t${SECRET}`), done]));
  await r.until('Z');
  r.close();
  assert.equal((await ph.direct.query(`SELECT count(*)::int AS n FROM ${S}.people WHERE secret = $1`, [SECRET])).rows[0].n, 4, 'the target got the real values');
  await ph.h.sink.drain();
  const all = Buffer.concat(ph.h.producer.records.map((x) => Buffer.from(x.value)));
  assert.ok(!all.includes(SECRET), 'the secret is in the event log');
  assert.ok(!all.includes('PLAIN-SEC\x00'), 'no partial COPY row');
  const events = ph.h.events();
  const blocked = events.find((e) => e.type === 'policy.blocked');
  assert.ok(blocked && blocked.type === 'policy.blocked' && blocked.statement.includes("secret <> '[REDACTED]'"), JSON.stringify(blocked));
  const copied = Buffer.concat(events.filter((e) => e.type === 'frame' && e.direction === 'c2s' && e.msg_type === 'd').map((e) => Buffer.from((e as { data: Uint8Array }).data).subarray(5))).toString();
  assert.equal(copied, '10\t[REDACTED]\n11\t[REDACTED]', 'COPY rows recorded whole and masked');
});
