import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IllegalTransition, PgEvent, PgState, TRANSITIONS, canTransition, transition } from './session.ts';
import { CancelRegistry } from './cancel.ts';
import { tokenFailure } from './token.ts';
import { UpstreamAuth } from './upstream-auth.ts';
import { Secret } from '../../secrets.ts';

test('the happy path through the state machine', () => {
  let s = PgState.AwaitingStartup;
  for (const e of [
    PgEvent.EncryptionDeclined, // GSSENCRequest → 'N'
    PgEvent.SslAccepted,
    PgEvent.TlsEstablished,
    PgEvent.StartupAccepted,
    PgEvent.TokenReceived,
    PgEvent.TokenAccepted,
    PgEvent.UpstreamConnected,
    PgEvent.UpstreamAuthenticated,
    PgEvent.Close,
  ]) {
    s = transition(s, e);
  }
  assert.equal(s, PgState.Closed);
});

test('illegal moves throw; every state but Closed can close', () => {
  assert.throws(() => transition(PgState.AwaitingStartupTls, PgEvent.SslAccepted), IllegalTransition);
  assert.throws(() => transition(PgState.Relaying, PgEvent.StartupAccepted), IllegalTransition);
  assert.throws(() => transition(PgState.Closed, PgEvent.Close), IllegalTransition);
  for (const state of Object.values(PgState)) {
    assert.equal(canTransition(state, PgEvent.Close), state !== PgState.Closed, state);
    assert.ok(state in TRANSITIONS);
  }
});

test('cancel registry: issued keys resolve, wrong secrets and released keys do not', () => {
  const r = new CancelRegistry();
  const k = r.issue({ sessionId: 's1', targetId: 't', upstreamPid: 42, upstreamSecret: Buffer.from([1, 2, 3, 4]) });
  assert.ok(k.pid > 0 && k.pid < 2 ** 31);
  assert.equal(r.lookup(k.pid, k.secret)?.upstreamPid, 42);
  const wrong = Buffer.from(k.secret);
  wrong[0]! ^= 1;
  assert.equal(r.lookup(k.pid, wrong), undefined);
  assert.equal(r.lookup(k.pid + 1, k.secret), undefined);
  assert.equal(r.lookup(k.pid, Buffer.alloc(3)), undefined);
  r.release(k.pid);
  assert.equal(r.lookup(k.pid, k.secret), undefined);
});

test('token failures map to GW codes; JWKS trouble is retriable and hides infrastructure details', () => {
  const err = (code: string, message: string): Error => Object.assign(new Error(message), { code });
  assert.deepEqual(tokenFailure(err('ID_ERR_TOKEN_EXPIRED', 'token expired')), { code: 'GW_ERR_TOKEN_EXPIRED', reason: 'token expired' });
  assert.equal(tokenFailure(err('ID_ERR_WRONG_AUDIENCE', 'x')).code, 'GW_ERR_TOKEN_AUDIENCE');
  const jwks = tokenFailure(err('ID_ERR_JWKS_UNAVAILABLE', 'JWKS file /secret/path unreadable'));
  assert.equal(jwks.code, 'GW_ERR_IDP_UNAVAILABLE');
  assert.ok(!jwks.reason.includes('/secret/path'));
  assert.deepEqual(tokenFailure(new TypeError('boom eyJhbGciOi')), { code: 'GW_ERR_TOKEN_INVALID', reason: 'token could not be verified' });
});

test('upstream auth core: StartupMessage carries the target user/db and client params, not the caller\'s', () => {
  const a = new UpstreamAuth({
    user: 'app',
    database: 'db1',
    password: new Secret('pw'),
    params: new Map([['application_name', 'psql'], ['DateStyle', 'ISO']]),
  });
  const s = a.startup().toString('latin1');
  assert.match(s, /user\0app\0database\0db1\0application_name\0psql\0DateStyle\0ISO\0\0$/);
  // trust: AuthenticationOk straight away
  const ok = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
  assert.deepEqual(a.onMessage(0x52, ok), { kind: 'ok', method: 'trust' });
  // cleartext asked but no password configured
  const cleartextAsk = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]);
  const b = new UpstreamAuth({ user: 'app', database: 'db', password: undefined, params: new Map(), allowed: new Set(['cleartext']) });
  const step = b.onMessage(0x52, cleartextAsk);
  assert.equal(step.kind, 'fail');
  assert.ok(step.kind === 'fail' && step.code === 'GW_ERR_UPSTREAM_AUTH' && /none is configured/.test(step.message));
  // by default (SCRAM only) a cleartext or md5 request is refused before the password is touched
  for (const ask of [cleartextAsk, Buffer.from([0x52, 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4])]) {
    const d = new UpstreamAuth({ user: 'app', database: 'db', password: new Secret('pw'), params: new Map() });
    const refused = d.onMessage(0x52, ask);
    assert.ok(refused.kind === 'fail' && /auth_methods does not allow/.test(refused.message), JSON.stringify(refused));
  }
  // a target skipping SCRAM's server signature is refused
  const c = new UpstreamAuth({ user: 'app', database: 'db', password: new Secret('pw'), params: new Map() });
  const sasl = Buffer.concat([Buffer.from([0x52, 0, 0, 0, 23, 0, 0, 0, 10]), Buffer.from('SCRAM-SHA-256\0\0')]);
  assert.equal(c.onMessage(0x52, sasl).kind, 'send');
  assert.equal(c.onMessage(0x52, ok).kind, 'fail');
});
