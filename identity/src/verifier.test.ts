import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createVerifier } from './verifier.ts';
import { IdentityError } from './types.ts';

const ISSUER = 'https://issuer.test';
const AUD = 'vigil';
const now = () => Math.floor(Date.now() / 1000);

interface Key { priv: CryptoKey; pub: CryptoKey; jwk: JWK; kid: string }

async function makeKey(alg = 'ES256'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { priv: privateKey, pub: publicKey, jwk: { ...jwk, kid, alg, use: 'sig' }, kid };
}

function sign(key: Key, claims: Record<string, unknown> = {}, opts: { iss?: string; aud?: string; exp?: number; nbf?: number; sub?: string | null; alg?: string } = {}) {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: opts.alg ?? 'ES256', kid: key.kid })
    .setIssuer(opts.iss ?? ISSUER)
    .setAudience(opts.aud ?? AUD)
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? now() + 300);
  if (opts.sub !== null) jwt.setSubject(opts.sub ?? 'alice');
  if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
  return jwt.sign(key.priv);
}

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');

async function rejectsWith(p: Promise<unknown>, code: string, retriable = false) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof IdentityError, `expected IdentityError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.retriable, retriable);
    return true;
  });
}

describe('verifier with a local JWKS file', () => {
  let dir: string;
  let file: string;
  let key: Key;
  let other: Key;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-id-'));
    file = join(dir, 'jwks.json');
    key = await makeKey();
    other = await makeKey();
    writeFileSync(file, JSON.stringify({ keys: [key.jwk] }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const verifier = () => createVerifier({ issuer: ISSUER, jwks_file: file });

  test('valid token: identity with roles, groups, actor_kind human', async () => {
    const token = await sign(key, { roles: ['analyst'], groups: ['sre', 'db'] });
    const id = await verifier().verify(token);
    assert.deepEqual({ ...id, exp: undefined }, { sub: 'alice', issuer: ISSUER, groups: ['sre', 'db'], roles: ['analyst'], actor_kind: 'human', exp: undefined });
    assert.equal(typeof id.exp, 'number');
  });

  test('actor_kind: explicit claim, else agent when `act` exists', async () => {
    const v = verifier();
    assert.equal((await v.verify(await sign(key, { actor_kind: 'agent' }))).actor_kind, 'agent');
    assert.equal((await v.verify(await sign(key, { act: { sub: 'bot-7' } }))).actor_kind, 'agent');
    assert.equal((await v.verify(await sign(key, { actor_kind: 'human', act: { sub: 'x' } }))).actor_kind, 'human');
  });

  test('custom roles/groups claims', async () => {
    const v = createVerifier({ issuer: ISSUER, jwks_file: file, roles_claim: 'vigil_roles', groups_claim: 'grp' });
    const id = await v.verify(await sign(key, { vigil_roles: ['admin'], grp: ['x'], roles: ['ignored'] }));
    assert.deepEqual(id.roles, ['admin']);
    assert.deepEqual(id.groups, ['x']);
  });

  test('expired', async () => {
    await rejectsWith(verifier().verify(await sign(key, {}, { exp: now() - 120 })), 'ID_ERR_TOKEN_EXPIRED');
  });

  test('expired within tolerance is accepted', async () => {
    const id = await verifier().verify(await sign(key, {}, { exp: now() - 5 }));
    assert.equal(id.sub, 'alice');
  });

  test('not yet valid beyond tolerance; nbf within tolerance accepted', async () => {
    await rejectsWith(verifier().verify(await sign(key, {}, { nbf: now() + 120 })), 'ID_ERR_TOKEN_NOT_YET_VALID');
    assert.equal((await verifier().verify(await sign(key, {}, { nbf: now() + 10 }))).sub, 'alice');
  });

  test('wrong audience', async () => {
    await rejectsWith(verifier().verify(await sign(key, {}, { aud: 'someone-else' })), 'ID_ERR_WRONG_AUDIENCE');
  });

  test('wrong issuer', async () => {
    await rejectsWith(verifier().verify(await sign(key, {}, { iss: 'https://evil.test' })), 'ID_ERR_WRONG_ISSUER');
  });

  test('no sub', async () => {
    await rejectsWith(verifier().verify(await sign(key, {}, { sub: null })), 'ID_ERR_NO_SUB');
  });

  test('alg none (hand-crafted) is refused', async () => {
    const header = b64url(JSON.stringify({ alg: 'none', typ: 'JWT', kid: key.kid }));
    const payload = b64url(JSON.stringify({ iss: ISSUER, aud: AUD, sub: 'mallory', exp: now() + 300, roles: ['admin'] }));
    await rejectsWith(verifier().verify(`${header}.${payload}.`), 'ID_ERR_ALG_NOT_ALLOWED');
  });

  test('HS256 signed with the public key bytes as HMAC secret (key confusion) is refused', async () => {
    const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: key.kid }));
    const payload = b64url(JSON.stringify({ iss: ISSUER, aud: AUD, sub: 'mallory', exp: now() + 300, roles: ['admin'] }));
    for (const secret of [await exportSPKI(key.pub), JSON.stringify(key.jwk)]) {
      const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      await rejectsWith(verifier().verify(`${header}.${payload}.${sig}`), 'ID_ERR_ALG_NOT_ALLOWED');
    }
  });

  test('token signed by another key (same kid claimed, and unknown kid) fails signature', async () => {
    const forgedSameKid = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: key.kid }).setIssuer(ISSUER).setAudience(AUD).setSubject('mallory').setExpirationTime(now() + 300).sign(other.priv);
    await rejectsWith(verifier().verify(forgedSameKid), 'ID_ERR_BAD_SIGNATURE');
    await rejectsWith(verifier().verify(await sign(other)), 'ID_ERR_BAD_SIGNATURE');
  });

  test('tampered payload fails signature', async () => {
    const [h, , s] = (await sign(key, { roles: ['analyst'] })).split('.');
    const p = b64url(JSON.stringify({ iss: ISSUER, aud: AUD, sub: 'alice', exp: now() + 300, roles: ['admin'] }));
    await rejectsWith(verifier().verify(`${h}.${p}.${s}`), 'ID_ERR_BAD_SIGNATURE');
  });

  test('malformed tokens', async () => {
    for (const t of ['', 'abc', 'a.b', 'a.b.c.d', '!!!.###.$$$']) await rejectsWith(verifier().verify(t), 'ID_ERR_MALFORMED');
  });

  test('token without exp is refused', async () => {
    const t = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: key.kid }).setIssuer(ISSUER).setAudience(AUD).setSubject('a').sign(key.priv);
    await rejectsWith(verifier().verify(t), 'ID_ERR_MALFORMED');
  });

  test('error messages never contain the token', async () => {
    const token = await sign(key, {}, { exp: now() - 1000 });
    try {
      await verifier().verify(token);
      assert.fail('should reject');
    } catch (err) {
      const text = `${(err as Error).message} ${(err as Error).stack}`;
      for (const part of token.split('.')) assert.ok(!text.includes(part));
    }
  });

  test('jwks_file is re-read when it changes', async () => {
    const v = verifier();
    const rotated = await makeKey();
    const token = await sign(rotated);
    await rejectsWith(v.verify(token), 'ID_ERR_BAD_SIGNATURE');
    writeFileSync(file, JSON.stringify({ keys: [key.jwk, rotated.jwk] }));
    assert.equal((await v.verify(token)).sub, 'alice');
    // Removing the key (revocation) takes effect too.
    writeFileSync(file, JSON.stringify({ keys: [key.jwk] }));
    await rejectsWith(v.verify(token), 'ID_ERR_BAD_SIGNATURE');
  });

  test('unreadable jwks_file fails closed, retriable', async () => {
    const v = createVerifier({ issuer: ISSUER, jwks_file: join(dir, 'missing.json') });
    await rejectsWith(v.verify(await sign(key)), 'ID_ERR_JWKS_UNAVAILABLE', true);
  });
});

describe('verifier with a remote JWKS', () => {
  let server: Server;
  let url: string;
  let requests = 0;
  let status = 200;
  let key: Key;
  before(async () => {
    key = await makeKey();
    server = createServer((req, res) => {
      requests++;
      if (req.url !== '/jwks.json' || status !== 200) {
        res.writeHead(status === 200 ? 404 : status).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [key.jwk] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address() as { port: number };
    url = `http://127.0.0.1:${addr.port}/jwks.json`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('verifies over HTTP and caches the JWKS', async () => {
    requests = 0;
    const v = createVerifier({ issuer: ISSUER, jwks_url: url });
    const tokens = await Promise.all([1, 2, 3, 4, 5].map(() => sign(key)));
    for (const t of tokens) assert.equal((await v.verify(t)).sub, 'alice');
    await Promise.all(tokens.map((t) => v.verify(t)));
    assert.equal(requests, 1);
  });

  test('unknown kid does not refetch within the cooldown', async () => {
    const v = createVerifier({ issuer: ISSUER, jwks_url: url });
    await v.verify(await sign(key));
    requests = 0;
    const stranger = await makeKey();
    for (let i = 0; i < 5; i++) await rejectsWith(v.verify(await sign(stranger)), 'ID_ERR_BAD_SIGNATURE');
    assert.equal(requests, 0);
  });

  test('HTTP error from the JWKS endpoint: retriable ID_ERR_JWKS_UNAVAILABLE', async () => {
    status = 503;
    try {
      await rejectsWith(createVerifier({ issuer: ISSUER, jwks_url: url }).verify(await sign(key)), 'ID_ERR_JWKS_UNAVAILABLE', true);
    } finally {
      status = 200;
    }
  });

  test('unreachable JWKS endpoint: retriable ID_ERR_JWKS_UNAVAILABLE', async () => {
    const v = createVerifier({ issuer: ISSUER, jwks_url: 'http://127.0.0.1:1/jwks.json' });
    await rejectsWith(v.verify(await sign(key)), 'ID_ERR_JWKS_UNAVAILABLE', true);
  });
});
