/**
 * The UI's sign-in on the dev issuer (OAuth authorization code + PKCE) and the static UI plugin,
 * through fastify.inject() with a real dev issuer and verifier in a temp dir. No store query runs
 * here, so the store is a stand-in that fails if touched.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import { openDevIssuer, type DevIssuer } from '@vigil/identity/dev-issuer';
import { createVerifier } from '@vigil/identity/verifier';
import { buildApi } from './app.ts';
import { openLocalAdmin, ADMIN_FILE, type LocalAdmin } from './login/local-admin.ts';
import { FailureLimiter } from './login/limiter.ts';
import { CodeStore } from './login/codes.ts';

const ISSUER = 'http://127.0.0.1:8480';
const REDIRECT = `${ISSUER}/ui/callback`;
let dir: string;
let issuer: DevIssuer;
let admin: LocalAdmin;
let password: string;
let app: FastifyInstance;
const logLines: string[] = [];
const noStore = new Proxy({}, { get: () => { throw new Error('the store must not be used here'); } }) as unknown as ClickHouseClient;

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};
const authorizeQuery = (over: Record<string, string> = {}, challenge = pkce().challenge) =>
  new URLSearchParams({ response_type: 'code', client_id: 'vigil-ui', redirect_uri: REDIRECT, scope: 'openid', state: 'st-1', code_challenge: challenge, code_challenge_method: 'S256', ...over }).toString();
const form = (o: Record<string, string>) => ({ 'content-type': 'application/x-www-form-urlencoded' as const, body: new URLSearchParams(o).toString() });

async function signIn(challenge: string, pw = password, ip = '10.0.0.1') {
  const p = Object.fromEntries(new URLSearchParams(authorizeQuery({}, challenge)));
  const { body } = form({ ...p, username: 'admin', password: pw });
  return app.inject({ method: 'POST', url: '/oauth/authorize', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: body, remoteAddress: ip });
}
async function exchange(code: string, verifier: string, over: Record<string, string> = {}) {
  const { body } = form({ grant_type: 'authorization_code', client_id: 'vigil-ui', redirect_uri: REDIRECT, code, code_verifier: verifier, ...over });
  return app.inject({ method: 'POST', url: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: body });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-login-'));
  issuer = await openDevIssuer({ dir: join(dir, 'issuer'), issuer: ISSUER });
  admin = await openLocalAdmin({ dir: join(dir, 'issuer') });
  password = admin.createdPassword!;
  const uiDir = join(dir, 'ui');
  mkdirSync(join(uiDir, 'assets'), { recursive: true });
  writeFileSync(join(uiDir, 'index.html'), '<!doctype html><title>vigil-ui-index</title>');
  writeFileSync(join(uiDir, 'assets', 'app-abc123.js'), 'console.log("app")');
  const logger = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { logLines.push(String(c)); cb(); } }));
  app = await buildApi({ config: {}, verifier: createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file }), store: noStore, devIssuer: issuer, localAdmin: admin, uiDir, logger });
  await app.ready();
});
after(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('local admin account', () => {
  test('created once: a strong password, kept only as a scrypt hash (0600); reopening keeps it and prints nothing', async () => {
    assert.match(password, /^[A-Za-z0-9_-]{24}$/);
    const file = join(dir, 'issuer', ADMIN_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(password));
    assert.equal(JSON.parse(text).alg, 'scrypt');
    const again = await openLocalAdmin({ dir: join(dir, 'issuer') });
    assert.equal(again.createdPassword, undefined);
    assert.equal(await again.verify('admin', password), true);
    assert.equal(await again.verify('admin', password + 'x'), false);
    assert.equal(await again.verify('root', password), false);
  });
  test('a corrupt password file is an error, not a silent reset', async () => {
    const d = join(dir, 'corrupt');
    mkdirSync(d);
    writeFileSync(join(d, ADMIN_FILE), '{"alg":"md5"}');
    await assert.rejects(openLocalAdmin({ dir: d }), /not a Vigil scrypt password file/);
  });
});

describe('discovery', () => {
  test('advertises the authorization and token endpoints, code flow and S256 only', async () => {
    const d = (await app.inject({ url: '/.well-known/openid-configuration' })).json();
    assert.equal(d.authorization_endpoint, `${ISSUER}/oauth/authorize`);
    assert.equal(d.token_endpoint, `${ISSUER}/oauth/token`);
    assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(d.response_types_supported, ['code']);
  });
});

describe('GET /oauth/authorize', () => {
  test('a valid request shows the login form with its parameters carried, escaped, under a strict CSP', async () => {
    const res = await app.inject({ url: `/oauth/authorize?${authorizeQuery({ state: '"><script>alert(1)</script>' })}` });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.ok(!res.body.includes('<script>'));
    assert.ok(res.body.includes('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"'));
    assert.ok(res.body.includes('name="code_challenge"'));
  });
  test('unknown client or unregistered redirect_uri: an error page, never a redirect', async () => {
    for (const over of [{ client_id: 'evil' }, { redirect_uri: 'https://evil.example/cb' }, { redirect_uri: `${ISSUER}/ui/other` }] as Record<string, string>[]) {
      const res = await app.inject({ url: `/oauth/authorize?${authorizeQuery(over)}` });
      assert.equal(res.statusCode, 400, JSON.stringify(over));
      assert.equal(res.headers.location, undefined);
      assert.match(res.body, /invalid_(client|request)/);
    }
  });
  test('no PKCE, plain PKCE or another response_type: back to the client with error= and the state', async () => {
    for (const [over, err] of [
      [{ code_challenge_method: 'plain' }, 'invalid_request'],
      [{ code_challenge: 'short' }, 'invalid_request'],
      [{ response_type: 'token' }, 'unsupported_response_type'],
    ] as const) {
      const res = await app.inject({ url: `/oauth/authorize?${authorizeQuery(over)}` });
      assert.equal(res.statusCode, 303);
      const loc = new URL(String(res.headers.location));
      assert.equal(`${loc.origin}${loc.pathname}`, REDIRECT);
      assert.equal(loc.searchParams.get('error'), err);
      assert.equal(loc.searchParams.get('state'), 'st-1');
      assert.equal(loc.searchParams.get('code'), null);
    }
  });
});

describe('sign-in and token exchange', () => {
  test('right password → code → token with the admin role, verified by the API; the password is nowhere', async () => {
    const { verifier, challenge } = pkce();
    const res = await signIn(challenge);
    assert.equal(res.statusCode, 303, res.body);
    const loc = new URL(String(res.headers.location));
    assert.equal(`${loc.origin}${loc.pathname}`, REDIRECT);
    assert.equal(loc.searchParams.get('state'), 'st-1');
    const code = loc.searchParams.get('code')!;
    assert.match(code, /^[A-Za-z0-9_-]{43}$/);
    const tok = await exchange(code, verifier);
    assert.equal(tok.statusCode, 200, tok.body);
    assert.equal(tok.headers['cache-control'], 'no-store');
    const body = tok.json();
    assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'scope', 'token_type']);
    assert.equal(body.token_type, 'Bearer');
    const me = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${body.access_token}` } });
    assert.equal(me.statusCode, 200, me.body);
    assert.deepEqual({ ...(me.json() as object), exp: 0 }, { sub: 'admin', issuer: ISSUER, roles: ['admin'], groups: ['vigil-admins'], actor_kind: 'human', exp: 0 });
    // A code is good once.
    const again = await exchange(code, verifier);
    assert.equal(again.statusCode, 400);
    assert.deepEqual(again.json(), { error: 'invalid_grant', error_description: again.json().error_description });
    assert.ok(!logLines.join('').includes(password), 'the password reached the log');
    assert.ok(logLines.join('').includes('sign-in succeeded'));
  });
  test('wrong verifier, wrong redirect_uri or wrong client: refused, and the code is spent', async () => {
    const { verifier, challenge } = pkce();
    const code = new URL(String((await signIn(challenge)).headers.location)).searchParams.get('code')!;
    const bad = await exchange(code, pkce().verifier);
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error, 'invalid_grant');
    assert.equal((await exchange(code, verifier)).json().error, 'invalid_grant', 'a code survives a failed redemption');
    const code2 = new URL(String((await signIn(challenge)).headers.location)).searchParams.get('code')!;
    assert.equal((await exchange(code2, verifier, { redirect_uri: `${ISSUER}/elsewhere` })).json().error, 'invalid_grant');
    const code3 = new URL(String((await signIn(challenge)).headers.location)).searchParams.get('code')!;
    const wrongClient = await exchange(code3, verifier, { client_id: 'other' });
    assert.equal(wrongClient.statusCode, 401);
    assert.equal(wrongClient.json().error, 'invalid_client');
    assert.equal((await exchange(code3, verifier, { grant_type: 'password' })).json().error, 'unsupported_grant_type');
  });
  test('the token endpoint speaks OAuth errors for a JSON body too', async () => {
    const res = await app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'authorization_code' } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error, 'invalid_request');
  });
  test('wrong password: 401 form again with a message, no code; the password is not echoed or logged', async () => {
    const res = await signIn(pkce().challenge, 'not-the-password-1234', '10.0.0.2');
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers.location, undefined);
    assert.match(res.body, /Wrong user name or password/);
    assert.ok(!res.body.includes('not-the-password-1234'));
    assert.ok(!logLines.join('').includes('not-the-password-1234'));
  });
  test('after 10 failures from one address it is refused for a while (even with the right password); others are not', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await signIn(pkce().challenge, `wrong-${i}`, '10.0.0.3')).statusCode, 401);
    const locked = await signIn(pkce().challenge, password, '10.0.0.3');
    assert.equal(locked.statusCode, 429);
    assert.equal(locked.headers.location, undefined);
    assert.equal((await signIn(pkce().challenge, password, '10.0.0.4')).statusCode, 303);
  });
});

describe('limiter and code store (clock injected)', () => {
  test('the failure window slides', () => {
    let t = 0;
    const l = new FailureLimiter(2, 1000, 10, () => t);
    l.fail('a');
    l.fail('a');
    assert.equal(l.blocked('a'), true);
    t = 1001;
    assert.equal(l.blocked('a'), false);
  });
  test('codes expire and are bounded', () => {
    let t = 0;
    const s = new CodeStore(100, 2, () => t);
    const g = { client_id: 'c', redirect_uri: 'r', code_challenge: 'x', sub: 's', roles: [] };
    const a = s.issue(g);
    const b = s.issue(g);
    const c = s.issue(g); // evicts a
    assert.equal(s.redeem(a), undefined);
    assert.equal(s.redeem(b)?.sub, 's');
    t = 101;
    assert.equal(s.redeem(c), undefined);
  });
});

describe('static UI', () => {
  test('/ redirects to /ui/; /ui/ and client-side routes get index.html, uncached, under the UI CSP', async () => {
    const root = await app.inject({ url: '/' });
    assert.equal(root.statusCode, 302);
    assert.equal(root.headers.location, '/ui/');
    for (const url of ['/ui/', '/ui/sessions/abc', '/ui/callback?code=x&state=y']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.ok(res.body.includes('vigil-ui-index'));
      assert.equal(res.headers['cache-control'], 'no-cache');
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /connect-src 'self' http:\/\/127\.0\.0\.1:8480/);
      assert.match(csp, /frame-ancestors 'none'/);
    }
  });
  test('hashed assets are served immutable; missing files and traversal are 404 problems', async () => {
    const js = await app.inject({ url: '/ui/assets/app-abc123.js' });
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    assert.match(String(js.headers['cache-control']), /immutable/);
    for (const url of ['/ui/assets/missing.js', '/ui/..%2f..%2fpackage.json', '/ui/assets/..%2f..%2f..%2f..%2f..%2fpackage.json']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 404, url);
      assert.match(String(res.headers['content-type']), /problem\+json/);
    }
    // Dot segments the router resolves itself leave /ui/ altogether: an unknown route, which needs a token.
    const dots = await app.inject({ url: '/ui/%2e%2e/%2e%2e/package.json' });
    assert.ok([401, 404].includes(dots.statusCode), String(dots.statusCode));
    assert.ok(!dots.body.includes('workspaces'));
  });
  test('/api/ui/config tells the UI where to log in (public, no secret)', async () => {
    const res = await app.inject({ url: '/api/ui/config' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { issuer: ISSUER, client_id: 'vigil-ui', scope: 'openid', redirect_path: '/ui/callback' });
  });
});
