/**
 * The at-rest transform on decoded queries and events: the session's decision applies, previews
 * and errors pass the detectors and lose echoes, hashes equal the engine's, and the without-policy
 * modes (store, redact, and store switching to redact on a gateway's policy.loaded).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChainedEvent, QueryEvent } from '@vigil/schemas';
import { loadIngestConfig } from '../../config.ts';
import { openMaskingRuntime } from './runtime.ts';
import { AtRestMasker } from './transform.ts';
import type { SessionInfo } from '../../sinks/clickhouse/rows.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-atrest-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const policyFile = join(dir, 'policy.yaml');
writeFileSync(policyFile, `version: 1
rules:
  - id: agents-no-ssn
    match: { actor_kind: agent }
    mask: { columns: ['crm.customers.ssn'], strategy: redact }
  - id: cards
    mask: { detectors: [card], strategy: partial, keep_last: 4 }
`);
const info = (actor_kind: string): SessionInfo => ({
  started_at: 0, sub: 'bot-1', groups: [], issuer: '', actor_kind, client_addr: '', client_app: '', target_id: 'pg',
  protocol: 'postgres', target_addr: '', db_name: '', db_user: '', gateway_id: 'gw', tls: false, upstream_tls: false,
});
const q = (statement: string, params: (string | null)[] = [], error?: string): QueryEvent => ({
  type: 'query', version: 1, event_id: 'e', session_id: 's', seq: 1, end_seq: 2, time: 1_700_000_000_000_000, duration_us: 1,
  protocol_kind: params.length ? 'extended' : 'simple', statement, params, rows: 1, bytes: 1, ...(error ? { error } : {}),
});
const log = { debug() {}, info() {}, warn() {}, error() {} };

test('policy mode: the session decision masks literals, parameters, errors and previews', async () => {
  const rt = await openMaskingRuntime(loadIngestConfig({ masking: { policy_file: policyFile } } as never).masking, log);
  try {
    const m = new AtRestMasker(rt);
    const preview = { columns: ['id', 'note'], rows: [['1', 'card 4111111111111111'], ['2', 'echo PLAIN-SECRET-1']] };
    const r = m.query(q("SELECT id, note FROM customers WHERE ssn = 'PLAIN-SECRET-1'", [], 'bad "PLAIN-SECRET-1"'), preview, info('agent'), true);
    assert.equal(r.query.statement, "SELECT id, note FROM customers WHERE ssn = '[REDACTED]'");
    assert.equal(r.query.error, 'bad "[REDACTED]"');
    assert.deepEqual(r.preview!.rows, [['1', 'card ************1111'], ['2', 'echo [REDACTED]']]);
    const p = m.query(q('UPDATE customers SET ssn = $1 WHERE id = $2', ['PLAIN-SECRET-2', '7']), undefined, info('agent'), true);
    assert.deepEqual(p.query.params, ['[REDACTED]', '7']);
    // The rule is for agents: a human's session is stored as that human saw it (detectors still apply).
    const h = m.query(q("SELECT 1 FROM customers WHERE ssn = 'PLAIN-SECRET-3' AND note = '4111111111111111'"), undefined, info('human'), true);
    assert.equal(h.query.statement, "SELECT 1 FROM customers WHERE ssn = 'PLAIN-SECRET-3' AND note = '************1111'");
    // Unknown identity: every mask rule applies.
    assert.match(m.query(q("SELECT 1 FROM customers WHERE ssn = 'PLAIN-SECRET-4'"), undefined, undefined, true).query.statement, /ssn = '\[REDACTED\]'/);
    // Statement text unknown (restart after Parse): every parameter takes the strongest column rule.
    assert.deepEqual(m.query(q('', ['PLAIN-SECRET-5']), undefined, info('agent'), false).query.params, ['[REDACTED]']);
    const blocked = m.event({ type: 'policy.blocked', version: 1, event_id: 'b', time: 1, session_id: 's', seq: 3, prev_hash: '', hash: '', gateway_id: 'gw', sub: 'bot-1', actor_kind: 'agent', target_id: 'pg', statement: "DELETE FROM customers WHERE ssn = 'PLAIN-SECRET-6'", rule_id: null, action: 'block', reason: 'default', code: 'GW_ERR_POLICY_BLOCKED', sqlstate: '42501', message: 'm', protocol_kind: 'simple', features: [], relations: [] } as unknown as ChainedEvent, undefined);
    assert.equal((blocked as { statement: string }).statement, "DELETE FROM customers WHERE ssn = '[REDACTED]'");
  } finally {
    rt.close();
  }
});

test('without a policy: store keeps what was sent, redact masks every constant and parameter; policy.loaded switches store to redact', async () => {
  const rt = await openMaskingRuntime(loadIngestConfig({ masking: {} } as never).masking, log);
  const m = new AtRestMasker(rt);
  const sent = q("SELECT * FROM t WHERE a = 'PLAIN-SECRET-7' AND b = 5", ['x']);
  assert.equal(m.query(sent, undefined, info('agent'), true).query.statement, sent.statement);
  m.event({ type: 'policy.loaded', version: 1, event_id: 'p', time: 1, session_id: 'gateway:gw:1', seq: 0, prev_hash: '', hash: '', gateway_id: 'gw', file: 'p.yaml', digest: '0'.repeat(64), rules: 1, reason: 'start' } as unknown as ChainedEvent, undefined);
  assert.equal(rt.mode, 'redact');
  const r = m.query(sent, undefined, info('agent'), true).query;
  assert.equal(r.statement, "SELECT * FROM t WHERE a = '[REDACTED]' AND b = '[REDACTED]'");
  assert.deepEqual(r.params, ['[REDACTED]']);
});
