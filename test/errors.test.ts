/**
 * Stable error codes across the platform: unique, each with a boolean `retriable` and a
 * description, each documented in docs/errors.md. A new code without docs fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { GATEWAY_ERRORS } from '@vigil/gateway/errors';
import { SQL_ERRORS } from '@vigil/gateway/sql/errors';
import { POLICY_ERRORS } from '@vigil/gateway/policy/errors';
import { APPROVAL_ERRORS } from '@vigil/gateway/approvals/errors';
import { IDENTITY_ERRORS } from '@vigil/identity/errors';
import { IngestErrors } from '@vigil/ingest/errors';
import { KafkaLogErrors } from '@vigil/eventlog/kafka/errors';
import { LocalLogErrors } from '@vigil/eventlog/local/errors';
import { PortLogErrors } from '@vigil/eventlog/port/errors';
import { API_ERRORS } from '@vigil/replay-ui/errors';

const tables: Record<string, Record<string, { retriable: boolean; description: string }>> = {
  gateway: GATEWAY_ERRORS,
  'gateway/sql': SQL_ERRORS,
  'gateway/policy': POLICY_ERRORS,
  'gateway/approvals': APPROVAL_ERRORS,
  identity: IDENTITY_ERRORS,
  ingest: IngestErrors,
  'eventlog/kafka': KafkaLogErrors,
  'eventlog/local': LocalLogErrors,
  'eventlog/port': PortLogErrors,
  api: API_ERRORS,
};

test('error codes are unique across components and well-formed', () => {
  const seen = new Map<string, string>();
  for (const [component, table] of Object.entries(tables)) {
    for (const [code, entry] of Object.entries(table)) {
      assert.match(code, /^(GW|ID|ING|LOG|API)_ERR_[A-Z0-9_]+$/, `${component}: ${code}`);
      assert.ok(!seen.has(code), `${code} defined by both ${seen.get(code)} and ${component}`);
      seen.set(code, component);
      assert.equal(typeof entry.retriable, 'boolean', `${code}.retriable`);
      assert.ok(entry.description.length > 10, `${code} has a description`);
    }
  }
  assert.ok(seen.size > 30, `expected the platform's codes, found ${seen.size}`);
});

test('every error code is documented in docs/errors.md', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const missing = Object.values(tables).flatMap((t) => Object.keys(t)).filter((code) => !doc.includes(`\`${code}\``));
  assert.deepEqual(missing, [], `undocumented codes: ${missing.join(', ')}`);
});
