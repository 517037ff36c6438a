import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { API_ERRORS, problemOf } from './errors.ts';
import { parseApiConfig } from './config.ts';

const docs = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

test('API error codes: prefixed, unique, documented in docs/errors.md with their retriable flag', () => {
  const codes = Object.keys(API_ERRORS);
  assert.equal(new Set(codes).size, codes.length);
  const section = docs.slice(docs.indexOf('## API (API_ERR_*)'));
  assert.ok(docs.includes('## API (API_ERR_*)'));
  for (const [code, info] of Object.entries(API_ERRORS)) {
    assert.match(code, /^API_ERR_[A-Z_]+$/);
    const row = section.split('\n').find((l) => l.startsWith(`| \`${code}\``));
    assert.ok(row, `${code} is not documented`);
    assert.ok(row.includes(`| ${info.status} |`) && row.includes(`| ${info.retriable ? 'yes' : 'no'} |`), `${code} row disagrees with the table`);
  }
  // Only transient conditions are retriable.
  assert.deepEqual(codes.filter((c) => API_ERRORS[c as keyof typeof API_ERRORS].retriable).sort(), ['API_ERR_APPROVALS_UNAVAILABLE', 'API_ERR_AUDIT_UNAVAILABLE', 'API_ERR_IDENTITY_UNAVAILABLE', 'API_ERR_STORE_UNAVAILABLE']);
});

test('problem body', () => {
  assert.deepEqual(problemOf('API_ERR_FORBIDDEN', 'nope'), { type: 'urn:vigil:problem:API_ERR_FORBIDDEN', title: 'Forbidden', status: 403, detail: 'nope', code: 'API_ERR_FORBIDDEN' });
});

test('api config: defaults, frozen, unknown keys and bad bounds refused at once', () => {
  const c = parseApiConfig({});
  assert.deepEqual(
    { ...c, ui: { ...c.ui } },
    { listen_host: '127.0.0.1', listen_port: 8480, page_size_default: 50, page_size_max: 500, ui: { enabled: true, client_id: 'vigil-ui', scope: 'openid' } },
  );
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.ui));
  assert.throws(() => parseApiConfig({ ui: { client: 'x' } }), /\/ui\/client/);
  assert.throws(() => parseApiConfig({ listen_port: 70000, extra: 1 }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'API_ERR_CONFIG');
    assert.match(err.message, /listen_port/);
    assert.match(err.message, /extra|additional/i);
    return true;
  });
  assert.throws(() => parseApiConfig({ page_size_default: 600 }), /page_size_default: must be at most page_size_max/);
});
