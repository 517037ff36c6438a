import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { openDevIssuer } from './dev-issuer.ts';
import { createVerifier } from './verifier.ts';

test('dev issuer: creates keys once (0600), reuses them, mints verifiable tokens', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-dev-issuer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const issuer = 'http://127.0.0.1:8480';
  const a = await openDevIssuer({ dir, issuer });
  const keyFile = join(dir, 'issuer-key.json');
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const jwks = JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8'));
  assert.equal(jwks.keys.length, 1);
  assert.equal(jwks.keys[0].kid, a.kid);
  assert.equal(jwks.keys[0].d, undefined, 'public JWKS must not contain the private key');
  assert.deepEqual(a.jwks(), jwks);

  const b = await openDevIssuer({ dir, issuer });
  assert.equal(b.kid, a.kid, 'second open reuses the key');

  const token = await b.mint({ sub: 'agent-1', groups: ['ops'], roles: ['analyst'], ttl_s: 60, actor_kind: 'agent', audience: 'vigil' });
  assert.equal(decodeProtectedHeader(token).kid, a.kid);
  const id = await createVerifier({ issuer, jwks_file: a.jwks_file }).verify(token);
  assert.equal(id.sub, 'agent-1');
  assert.deepEqual(id.roles, ['analyst']);
  assert.deepEqual(id.groups, ['ops']);
  assert.equal(id.actor_kind, 'agent');
  assert.ok(id.exp! <= Math.floor(Date.now() / 1000) + 60);

  assert.deepEqual(a.discovery(), {
    issuer,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    id_token_signing_alg_values_supported: ['ES256'],
    subject_types_supported: ['public'],
  });
});
