import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { IngestError, IngestErrors } from './errors.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const section = doc.slice(doc.indexOf('## Ingest (ING_ERR_*)'));

test('ING_ERR codes are unique, prefixed and documented with their retriable flag', () => {
  assert.ok(doc.includes('## Ingest (ING_ERR_*)'), 'docs/errors.md has the Ingest section');
  const codes = Object.keys(IngestErrors);
  assert.equal(new Set(codes).size, codes.length);
  for (const [code, { retriable, description }] of Object.entries(IngestErrors)) {
    assert.match(code, /^ING_ERR_[A-Z_]+$/);
    assert.ok(description.length > 20);
    const row = section.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    assert.ok(row, `${code} is documented`);
    assert.ok(row.includes(retriable ? '| yes |' : '| no |'), `${code} documented as retriable=${retriable}`);
  }
  const documented = [...section.matchAll(/\| `(ING_ERR_[A-Z_]+)` \|/g)].map((m) => m[1]);
  assert.deepEqual(documented.sort(), [...codes].sort(), 'no stale codes in the doc');
});

test('IngestError takes retriable from the table', () => {
  assert.equal(new IngestError('ING_ERR_RETRY_EXHAUSTED', 'x').retriable, true);
  assert.equal(new IngestError('ING_ERR_STORE_SCHEMA', 'x').retriable, false);
});
