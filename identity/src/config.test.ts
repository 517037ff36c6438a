import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIdentityConfig } from './config.ts';
import { IDENTITY_ERRORS } from './errors.ts';
import { IdentityError } from './types.ts';

function configError(input: unknown): string {
  try {
    parseIdentityConfig(input);
  } catch (err) {
    assert.ok(err instanceof IdentityError);
    assert.equal(err.code, 'ID_ERR_CONFIG');
    return err.message;
  }
  assert.fail('expected ID_ERR_CONFIG');
}

test('defaults applied and frozen', () => {
  const c = parseIdentityConfig({ issuer: 'https://i', jwks_file: '/x/jwks.json' });
  assert.equal(c.audience, 'vigil');
  assert.deepEqual(c.algorithms, ['ES256', 'RS256', 'EdDSA']);
  assert.equal(c.clock_tolerance_s, 30);
  assert.equal(c.jwks_cache_ms, 600_000);
  assert.equal(c.roles_claim, 'roles');
  assert.equal(c.groups_claim, 'groups');
  assert.ok(Object.isFrozen(c));
});

test('exactly one of jwks_url / jwks_file', () => {
  assert.match(configError({ issuer: 'https://i' }), /exactly one of jwks_url or jwks_file/);
  assert.match(configError({ issuer: 'https://i', jwks_url: 'https://i/jwks', jwks_file: '/x' }), /exactly one/);
});

test('none and HS* refused, every error reported at once', () => {
  const msg = configError({ issuer: 'https://i', jwks_url: 'https://i/jwks', algorithms: ['none', 'HS256', 'ES256'], bogus: 1 });
  assert.match(msg, /'none' is never allowed/);
  assert.match(msg, /'HS256' is refused/);
  assert.match(msg, /bogus|additional/i);
});

test('bad jwks_url and missing issuer', () => {
  const msg = configError({ jwks_url: 'not a url' });
  assert.match(msg, /jwks_url: not a valid URL/);
  assert.match(msg, /issuer/);
});

test('error codes are unique, prefixed and described', () => {
  for (const [code, info] of Object.entries(IDENTITY_ERRORS)) {
    assert.match(code, /^ID_ERR_[A-Z_]+$/);
    assert.ok(info.description.length > 10);
  }
  assert.equal(IDENTITY_ERRORS.ID_ERR_JWKS_UNAVAILABLE.retriable, true);
  const retriable = Object.entries(IDENTITY_ERRORS).filter(([, i]) => i.retriable).map(([c]) => c);
  assert.deepEqual(retriable, ['ID_ERR_JWKS_UNAVAILABLE']);
});

test('every ID_ERR code is documented in docs/errors.md', async () => {
  const { readFileSync } = await import('node:fs');
  const docs = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const section = docs.slice(docs.indexOf('## Identity (ID_ERR_*)'));
  assert.ok(docs.includes('## Identity (ID_ERR_*)'));
  for (const [code, info] of Object.entries(IDENTITY_ERRORS)) {
    const row = section.split('\n').find((l) => l.startsWith(`| \`${code}\``));
    assert.ok(row, `${code} is not documented`);
    assert.ok(row.includes(`| ${info.retriable ? 'yes' : 'no'} |`));
  }
});
