/**
 * The directive actions (mask, limits) in the protocol modes the block and approval tests already
 * cover: pipelined simple queries, a pipelined extended batch, inside an explicit transaction —
 * through the real gateway against the real PostgreSQL, checked in the bytes the client receives.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startPolicyHarness, connect, RawPg, wire, errorFields, type PolicyHarness } from './testkit.ts';
import { maskCorpusSetup, SECRET } from './mask-corpus.ts';

const S = `modes_${randomBytes(4).toString('hex')}`;
const POLICY = `version: 1
rules:
  - id: no-ssn
    mask: { columns: ['${S}.customers.ssn'], strategy: redact }
  - id: few-rows
    match: { sub: ['lim-*'] }
    limits: { max_rows: 3 }
`;

let ph: PolicyHarness;
before(async () => {
  ph = await startPolicyHarness(POLICY);
  await ph.direct.query(maskCorpusSetup(S));
});
after(async () => {
  await ph.direct.query(`DROP SCHEMA ${S} CASCADE`);
  await ph.close();
});

/** Text of every DataRow column in `msgs`. */
function values(msgs: Buffer[]): string[] {
  const out: string[] = [];
  for (const m of msgs.filter((x) => x[0] === 0x44)) {
    let off = 7;
    for (let i = 0, n = m.readUInt16BE(5); i < n; i++) {
      const len = m.readInt32BE(off);
      off += 4;
      if (len >= 0) {
        out.push(m.toString('utf8', off, off + len));
        off += len;
      }
    }
  }
  return out;
}

const extendedQuery = (sql: string): Buffer[] => [wire.parse('', sql), wire.bind('', []), Buffer.from([0x44, 0, 0, 0, 6, 0x50, 0]), wire.execute()];

test('mask, pipelined: two simple queries and an extended batch in one write, all masked, in order', async () => {
  const c = await RawPg.login(ph.h.port, 'pipe', await ph.h.issuer.mint('pipe'));
  c.send(
    Buffer.concat([
      wire.query(`SELECT ssn FROM ${S}.customers`),
      wire.query(`SELECT upper(ssn) AS u, name FROM ${S}.customers`),
      ...extendedQuery(`SELECT ssn || '' FROM ${S}.customers`),
      ...extendedQuery(`SELECT name FROM ${S}.customers`),
      wire.sync(),
    ]),
  );
  const msgs = [...(await c.until('Z')), ...(await c.until('Z')), ...(await c.until('Z'))];
  const v = values(msgs);
  assert.deepEqual(v, ['[REDACTED]', '[REDACTED]', 'alice', '[REDACTED]', 'alice']);
  assert.ok(!Buffer.concat(msgs).includes(SECRET), 'the secret never reaches the client');
  c.close();
});

test('mask, inside an explicit transaction (simple and extended), and after a rollback', async () => {
  const c = await connect(ph.h, 'tx');
  await c.query('BEGIN');
  assert.deepEqual((await c.query(`SELECT ssn FROM ${S}.customers`)).rows, [{ ssn: '[REDACTED]' }]);
  assert.deepEqual((await c.query({ text: `SELECT ssn FROM ${S}.customers WHERE id = $1`, values: [1] })).rows, [{ ssn: '[REDACTED]' }]);
  await assert.rejects(c.query('SELECT 1/0'));
  await c.query('ROLLBACK');
  await c.query('BEGIN');
  assert.deepEqual((await c.query({ name: 'named-ssn', text: `SELECT ssn AS s FROM ${S}.customers` })).rows, [{ s: '[REDACTED]' }]);
  await c.query('COMMIT');
  assert.deepEqual((await c.query({ name: 'named-ssn', text: `SELECT ssn AS s FROM ${S}.customers` })).rows, [{ s: '[REDACTED]' }], 'the prepared statement reused outside the transaction');
  await c.end();
});

test('limits, extended protocol: rows past max_rows end the session with FATAL 53400', async () => {
  const c = await connect(ph.h, 'lim-ext');
  const errors: { code?: string }[] = [];
  c.on('error', (e) => errors.push(e as { code?: string }));
  assert.equal((await c.query({ text: 'SELECT g FROM generate_series(1, $1::int) g', values: [2] })).rows.length, 2);
  await assert.rejects(c.query({ text: 'SELECT g FROM generate_series(1, $1::int) g', values: [5] }), (e: { code?: string }) => e.code === '53400');
  await c.end().catch(() => {});
});

test('limits, pipelined inside a transaction: the row past the limit is not delivered; FATAL follows the rows before it', async () => {
  const c = await RawPg.login(ph.h.port, 'lim-pipe', await ph.h.issuer.mint('lim-pipe'));
  c.send(Buffer.concat([wire.query('BEGIN'), wire.query('SELECT 1 UNION ALL SELECT 2'), wire.query('SELECT 3 UNION ALL SELECT 4'), wire.query('COMMIT')]));
  const rest = await c.closedWith(10_000);
  assert.deepEqual(values(rest), ['1', '2', '3'], 'three rows in all, then the end');
  const fatal = rest.find((m) => m[0] === 0x45)!;
  assert.equal(errorFields(fatal).C, '53400');
  assert.equal(errorFields(fatal).S, 'FATAL');
});
