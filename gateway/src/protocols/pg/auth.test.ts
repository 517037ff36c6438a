/**
 * Integration: caller authentication (token failures), upstream login with real credentials
 * (SCRAM-SHA-256, md5, cleartext against a throwaway password-auth PostgreSQL), credential
 * custody (the password appears in no recorded byte, error or log line), TLS on both legs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPasswordPostgres, type PasswordPostgres } from '../../../../test/support/pg-scram.ts';
import { startHarness, createIssuer, connect, RawPg, wire, until, errorFields, type Harness, type Issuer } from './testkit.ts';
import { startGateway } from '../../index.ts';
import { isGatewayError } from '../../errors.ts';

// psql must run asynchronously: the gateway it talks to lives in this process.
const psql = async (args: string[], env: NodeJS.ProcessEnv): Promise<string> =>
  (await promisify(execFile)('psql', args, { env: { ...process.env, ...env } })).stdout;

let issuer: Issuer;
let main: Harness;
let pgpw: PasswordPostgres;
let certDir: string;
const cert = (name: string): string => join(certDir, name);

/** Self-signed certificates for localhost/127.0.0.1, plus an unrelated one (wrong CA). */
function makeCerts(): void {
  certDir = mkdtempSync(join(tmpdir(), 'vigil-pg-tls-'));
  for (const name of ['server', 'other']) {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', cert(`${name}.key`), '-out', cert(`${name}.crt`),
    ], { stdio: 'ignore' });
  }
}

before(async () => {
  makeCerts();
  issuer = await createIssuer();
  main = await startHarness({ issuer });
  pgpw = await startPasswordPostgres({ tls: { cert_file: cert('server.crt'), key_file: cert('server.key') } });
});
after(async () => {
  await main.close();
  await pgpw.stop();
  rmSync(issuer.dir, { recursive: true, force: true });
  rmSync(certDir, { recursive: true, force: true });
});

async function loginFails(h: Harness, user: string, token: string): Promise<Record<string, string>> {
  const c = await RawPg.open(h.port);
  c.send(wire.startup({ user, database: 'main' }));
  await c.next();
  c.send(wire.password(token));
  const rest = await c.closedWith();
  const e = rest.find((m) => m[0] === 0x45);
  assert.ok(e, 'an ErrorResponse before close');
  return errorFields(e);
}

test('token failures → FATAL 28P01 with a clear reason and an auth.failed event; the token is never echoed', async () => {
  const cases: [string, () => Promise<string> | string, string, RegExp][] = [
    ['foreign signature', () => issuer.mintForeign('mallory'), 'GW_ERR_TOKEN_SIGNATURE', /signature/],
    ['expired', () => issuer.mint('mallory', { exp: Math.floor(Date.now() / 1000) - 3600 }), 'GW_ERR_TOKEN_EXPIRED', /expired/],
    ['wrong audience', () => issuer.mint('mallory', { aud: 'someone-else' }), 'GW_ERR_TOKEN_AUDIENCE', /audience/],
    ['alg none', () => issuer.mintNone('mallory'), 'GW_ERR_TOKEN_ALGORITHM', /algorithm/],
    ['HS256 with the public key', () => issuer.mintHsWithPublicKey('mallory'), 'GW_ERR_TOKEN_ALGORITHM', /algorithm/],
    ['sub mismatch', () => issuer.mint('alice'), 'GW_ERR_SUB_MISMATCH', /subject "alice" does not match user "mallory"/],
    ['garbage', () => 'not-a-jwt', 'GW_ERR_TOKEN_INVALID', /malformed/],
    ['empty', () => '', 'GW_ERR_TOKEN_MISSING', /no token/],
  ];
  for (const [name, mint, code, reason] of cases) {
    const token = await mint();
    const before = main.events().length;
    const f = await loginFails(main, 'mallory', token);
    assert.equal(f.S, 'FATAL', name);
    assert.equal(f.C, '28P01', name);
    assert.match(f.M!, reason, name);
    if (token.length > 0) assert.ok(!f.M!.includes(token) && !f.M!.includes(token.split('.')[1] ?? '\0'), `${name}: token echoed`);
    await main.sink.drain();
    const failed = main.events().slice(before).find((e) => e.type === 'auth.failed');
    assert.ok(failed && failed.type === 'auth.failed', `${name}: auth.failed event`);
    assert.equal(failed.code, code, name);
    assert.equal(failed.claimed_user, 'mallory');
    const ended = main.events().slice(before).find((e) => e.type === 'session.ended' && e.session_id === failed.session_id);
    assert.ok(ended && ended.type === 'session.ended' && ended.reason === 'auth_failed', `${name}: session.ended auth_failed`);
  }
  const everything = Buffer.concat(main.producer.records.map((r) => r.value));
  assert.ok(!everything.includes(Buffer.from('eyJ')), 'no JWT (base64url JSON header) in any recorded byte');
});

test('the pg client sees the 28P01 as an authentication error', async () => {
  const c = new pg.Client({ host: '127.0.0.1', port: main.port, user: 'zed', database: 'main', password: await issuer.mint('zed', { aud: 'nope' }) });
  await assert.rejects(c.connect(), (e: { code?: string; message?: string }) => e.code === '28P01' && /audience/.test(e.message ?? ''));
});

test('unknown target → FATAL 3D000 naming the target; protocol.refused', async () => {
  const c = new pg.Client({ host: '127.0.0.1', port: main.port, user: 'alice', database: 'nope/db', password: 'x' });
  await assert.rejects(c.connect(), (e: { code?: string; message?: string }) => e.code === '3D000' && /target "nope" is not configured/.test(e.message ?? ''));
  await until(() => main.events().some((e) => e.type === 'protocol.refused' && e.code === 'GW_ERR_UNKNOWN_TARGET'), 3000, 'refusal');
});

const password = (role: { password: string }): string => role.password;

async function passwordGateway(env: NodeJS.ProcessEnv, targets: Record<string, unknown>[]): Promise<Harness> {
  return startHarness({ issuer, env, targets });
}

test('upstream SCRAM-SHA-256, md5 and cleartext logins; the password is in no recorded byte, error or log line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-secret-'));
  writeFileSync(join(dir, 'md5pw'), `${pgpw.roles.md5.password}\n`);
  const target = (id: string, role: { user: string }, pw: Record<string, string>, auth_methods = ['scram-sha-256']): Record<string, unknown> => ({
    id, protocol: 'postgres', host: '127.0.0.1', port: pgpw.port, database: 'postgres', user: role.user, password: pw, auth_methods,
  });
  const h = await passwordGateway({ VIGIL_PG_SCRAM: pgpw.roles.scram.password, VIGIL_PG_CLEAR: pgpw.roles.cleartext.password }, [
    target('scram', pgpw.roles.scram, { env: 'VIGIL_PG_SCRAM' }),
    target('md5', pgpw.roles.md5, { file: join(dir, 'md5pw') }, ['md5']),
    target('clear', pgpw.roles.cleartext, { env: 'VIGIL_PG_CLEAR' }, ['cleartext']),
    // Default auth_methods (SCRAM only): a target asking for cleartext never gets the password.
    target('clear-default', pgpw.roles.cleartext, { env: 'VIGIL_PG_CLEAR' }),
    target('scram-wrong', pgpw.roles.scram, { value: 'definitely-wrong-password' }),
  ]);
  try {
    for (const [db, role] of [['scram', pgpw.roles.scram], ['md5', pgpw.roles.md5], ['clear', pgpw.roles.cleartext]] as const) {
      const c = await connect(h, 'alice', { database: db });
      const r = await c.query('select current_user as u, $1::text as echo', ['hello']);
      assert.equal(r.rows[0].u, role.user, `${db}: logged in as the target role`);
      await c.end();
    }
    // Wrong target password: the caller gets a clear FATAL without the credential.
    const bad = new pg.Client({ host: '127.0.0.1', port: h.port, user: 'alice', database: 'scram-wrong', password: await issuer.mint('alice') });
    await assert.rejects(bad.connect(), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, '28000');
      assert.match(e.message ?? '', /could not log in to target "scram-wrong"/);
      assert.ok(!(e.message ?? '').includes('definitely-wrong-password'));
      return true;
    });
    // A target asking for cleartext when auth_methods does not allow it: refused, nothing sent.
    const downgraded = new pg.Client({ host: '127.0.0.1', port: h.port, user: 'alice', database: 'clear-default', password: await issuer.mint('alice') });
    await assert.rejects(downgraded.connect(), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, '28000');
      assert.match(e.message ?? '', /could not log in to target "clear-default": target asks for cleartext authentication, which this target's auth_methods does not allow/);
      return true;
    });
    await h.sink.drain();
    const stored = Buffer.concat(h.producer.records.map((r) => r.value));
    const logs = JSON.stringify(h.logs);
    for (const secret of [password(pgpw.roles.scram), password(pgpw.roles.md5), password(pgpw.roles.cleartext), 'definitely-wrong-password']) {
      assert.ok(!stored.includes(Buffer.from(secret)), 'password in a recorded event');
      assert.ok(!logs.includes(secret), 'password in a log line');
    }
    const started = h.events().filter((e) => e.type === 'session.started');
    assert.equal(started.length, 3);
    assert.ok(h.logs.some((l) => l.msg === 'target login failed' && l.obj.upstream_sqlstate === '28P01'));
  } finally {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unresolvable SecretRef fails startGateway, naming the ref and not any value', async () => {
  await assert.rejects(
    startGateway({
      config: { id: 'gw', postgres: { listen_port: 0 } },
      targets: [{ id: 't', protocol: 'postgres', host: '127.0.0.1', port: 5432, database: 'd', user: 'u', password: { env: 'VIGIL_PG_UNSET_FOR_TEST' } }],
      verifier: issuer.verifier,
      sink: main.sink,
      env: {},
    }),
    (e: unknown) => isGatewayError(e, 'GW_ERR_SECRET_UNRESOLVED') && /env VIGIL_PG_UNSET_FOR_TEST is not set/.test((e as Error).message),
  );
});

test('client TLS: sslmode=require works and is recorded; require_tls refuses plaintext with 28000', async () => {
  const h = await startHarness({ issuer, postgres: { tls: { cert_file: cert('server.crt'), key_file: cert('server.key') }, require_tls: true } });
  try {
    const c = await connect(h, 'tls-user', { ssl: { rejectUnauthorized: false } });
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
    await c.end();
    const sid = h.sessionsOf('tls-user')[0]!;
    const started = h.session(sid).events[0]!;
    assert.ok(started.type === 'session.started' && started.tls === true);
    // psql with sslmode=require and CA verification
    const out = await psql(['-h', 'localhost', '-p', String(h.port), '-U', 'tls-psql', '-d', 'main', '-Atc', 'select 42'], {
      PGPASSWORD: await issuer.mint('tls-psql'), PGSSLMODE: 'verify-full', PGSSLROOTCERT: cert('server.crt'), PGGSSENCMODE: 'disable',
    });
    assert.equal(out.trim(), '42');
    const plain = new pg.Client({ host: '127.0.0.1', port: h.port, user: 'tls-user', database: 'main', password: await issuer.mint('tls-user') });
    await assert.rejects(plain.connect(), (e: { code?: string; message?: string }) => e.code === '28000' && /TLS is required/.test(e.message ?? ''));
    await until(() => h.events().some((e) => e.type === 'protocol.refused' && e.code === 'GW_ERR_TLS_REQUIRED'), 3000, 'refusal');
  } finally {
    await h.close();
  }
});

test('without a listener certificate SSLRequest is answered N and sslmode=prefer falls back to plaintext', async () => {
  const out = await psql(['-h', '127.0.0.1', '-p', String(main.port), '-U', 'pref', '-d', 'main', '-Atc', 'select 7'], {
    PGPASSWORD: await issuer.mint('pref'), PGSSLMODE: 'prefer', PGGSSENCMODE: 'prefer',
  });
  assert.equal(out.trim(), '7');
});

test('upstream TLS: require and verify-full (CA checked) succeed; a wrong CA fails with 08001', async () => {
  const base = { protocol: 'postgres', host: '127.0.0.1', port: pgpw.port, database: 'postgres', user: pgpw.roles.scram.user, password: { env: 'PW' } };
  const h = await passwordGateway({ PW: pgpw.roles.scram.password }, [
    { ...base, id: 'req', tls: { mode: 'require' } },
    { ...base, id: 'full', tls: { mode: 'verify-full', ca_file: cert('server.crt') } },
    { ...base, id: 'wrongca', tls: { mode: 'verify-full', ca_file: cert('other.crt') } },
  ]);
  try {
    for (const db of ['req', 'full']) {
      const c = await connect(h, `u-${db}`, { database: db });
      const r = await c.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
      assert.equal(r.rows[0].ssl, true, `${db}: upstream leg encrypted`);
      await c.end();
      const started = h.session(h.sessionsOf(`u-${db}`)[0]!).events[0]!;
      assert.ok(started.type === 'session.started' && started.upstream_tls === true);
    }
    const bad = new pg.Client({ host: '127.0.0.1', port: h.port, user: 'u', database: 'wrongca', password: await issuer.mint('u') });
    await assert.rejects(bad.connect(), (e: { code?: string; message?: string }) => e.code === '08001' && /TLS/.test(e.message ?? ''));
  } finally {
    await h.close();
  }
});
