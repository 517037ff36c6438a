import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { POLICY_ERRORS } from './errors.ts';
import { GATEWAY_ERRORS } from '../errors.ts';

test('policy error codes: well-formed, distinct from the gateway table, documented in the Gateway section of docs/errors.md', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const gatewaySection = doc.slice(doc.indexOf('## Gateway (GW_ERR_*)'));
  for (const [code, info] of Object.entries(POLICY_ERRORS)) {
    assert.match(code, /^GW_ERR_POLICY_[A-Z_]+$/);
    assert.ok(!(code in GATEWAY_ERRORS), `${code} also in gateway/src/errors.ts`);
    assert.ok(info.description.length > 10);
    const row = gatewaySection.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    assert.ok(row, `${code} has a row in the Gateway table`);
    const cells = row.split('|').map((c) => c.trim());
    assert.equal(cells[2], 'sqlstate' in info ? info.sqlstate : '—', `${code} SQLSTATE`);
    assert.equal(cells[3], info.retriable ? 'yes' : 'no', `${code} retriable`);
  }
});
