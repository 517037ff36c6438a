import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { parseGatewayConfig } from './config.ts';
import { GATEWAY_ERRORS, isGatewayError } from './errors.ts';
import { resolveSecret } from './secrets.ts';

const target = { id: 'main', protocol: 'postgres', host: '127.0.0.1', database: 'postgres', user: 'postgres' };

test('defaults fill in; the result is frozen', () => {
  const c = parseGatewayConfig({ gateway: { id: 'gw-1', postgres: {} }, targets: [target] }, {});
  assert.equal(c.gateway.id, 'gw-1');
  assert.equal(c.gateway.fail_closed, true);
  const pg = c.gateway.postgres;
  assert.equal(pg.listen_host, '127.0.0.1');
  assert.equal(pg.listen_port, 15432);
  assert.equal(pg.require_tls, false);
  assert.equal(pg.max_frame_bytes, 64 * 1024 * 1024);
  assert.equal(pg.max_startup_bytes, 10_000);
  assert.equal(pg.auth_timeout_ms, 60_000);
  assert.equal(c.targets[0]!.port, 5432);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.gateway.postgres) && Object.isFrozen(c.targets[0]));
});

test('every problem is reported at once; unknown keys are refused', () => {
  try {
    parseGatewayConfig({
      gateway: { postgres: { listen_port: 70000, bogus: 1, require_tls: true } , extra: true },
      targets: [{ ...target, port: 'x' }, { ...target, id: 'a/b' }, { ...target, tls: { mode: 'sometimes' } }, target, target],
      other: 1,
    }, {});
    assert.fail('expected GW_ERR_CONFIG');
  } catch (err) {
    assert.ok(isGatewayError(err, 'GW_ERR_CONFIG'));
    const m = (err as Error).message;
    for (const needle of ['/other', '/gateway/extra', '/gateway/postgres/listen_port', '/gateway/postgres/bogus', '/targets/0/port', '/targets/1/id', '/targets/2/tls', 'duplicate target id "main"']) {
      assert.ok(m.includes(needle), `missing ${needle} in ${m}`);
    }
  }
});

test('precedence: explicit > environment > default', () => {
  const env = { VIGIL_PG_LISTEN_PORT: '16000', VIGIL_PG_LISTEN_HOST: '0.0.0.0', VIGIL_GATEWAY_ID: 'from-env' };
  const fromEnv = parseGatewayConfig({ gateway: { postgres: {} } }, env);
  assert.equal(fromEnv.gateway.postgres.listen_port, 16000);
  assert.equal(fromEnv.gateway.postgres.listen_host, '0.0.0.0');
  assert.equal(fromEnv.gateway.id, 'from-env');
  const explicit = parseGatewayConfig({ gateway: { id: 'x', postgres: { listen_port: 1234 } } }, env);
  assert.equal(explicit.gateway.postgres.listen_port, 1234);
  assert.equal(explicit.gateway.id, 'x');
});

test('require_tls needs a certificate; the session cap must hold one frame', () => {
  assert.throws(() => parseGatewayConfig({ gateway: { postgres: { require_tls: true } } }, {}), /require_tls: needs/);
  assert.throws(
    () => parseGatewayConfig({ gateway: { postgres: { max_frame_bytes: 8 * 1024 * 1024, max_buffered_bytes_per_session: 1024 * 1024 } } }, {}),
    /max_buffered_bytes_per_session/,
  );
});

test('SecretRef: env, file (trailing newline dropped), dev-only value; errors name the ref, never the value', async () => {
  assert.equal((await resolveSecret({ env: 'PW' }, { PW: 's3cret' })).reveal(), 's3cret');
  const dir = mkdtempSync(join(tmpdir(), 'vigil-secret-'));
  try {
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    assert.equal((await resolveSecret({ file: join(dir, 'pw') })).reveal(), 'from-file');
    writeFileSync(join(dir, 'empty'), '\n');
    await assert.rejects(resolveSecret({ file: join(dir, 'empty') }), /file .*empty is empty/);
    await assert.rejects(resolveSecret({ file: join(dir, 'missing') }), /file .*missing could not be read \(ENOENT\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await assert.rejects(resolveSecret({ env: 'VIGIL_PG_PASSWORD' }, {}), (e: Error) => isGatewayError(e, 'GW_ERR_SECRET_UNRESOLVED') && e.message === 'env VIGIL_PG_PASSWORD is not set');
  const s = await resolveSecret({ value: 'inline-dev' });
  assert.equal(`${s}`, '[secret]');
  assert.equal(JSON.stringify({ s }), '{"s":"[secret]"}');
  assert.ok(!inspect(s).includes('inline-dev'));
});

test('GW_ERR_* table: unique codes, retriable flags, descriptions, SQLSTATEs well-formed', () => {
  for (const [code, e] of Object.entries(GATEWAY_ERRORS)) {
    assert.match(code, /^GW_ERR_[A-Z0-9_]+$/);
    assert.equal(typeof e.retriable, 'boolean');
    assert.ok(e.description.length > 10);
    const sqlstate = (e as { sqlstate?: string }).sqlstate;
    if (sqlstate !== undefined) assert.match(sqlstate, /^[0-9A-Z]{5}$/);
  }
});
