import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ScramClient, ScramError, md5Password } from './scram.ts';

// RFC 7677 section 3 test vector.
const NONCE = 'rOprNGfwEbeRWgbNEkqO';
const SERVER_FIRST = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
const CLIENT_FINAL = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

test('SCRAM-SHA-256 client matches the RFC 7677 test vector', () => {
  const c = new ScramClient('pencil', 'user', NONCE);
  assert.equal(c.clientFirst(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  assert.equal(c.clientFinal(SERVER_FIRST), CLIENT_FINAL);
  c.verifyServerFinal(SERVER_FINAL);
});

test('SCRAM: a wrong server signature, a server error, or a foreign nonce is refused', () => {
  const c = new ScramClient('pencil', 'user', NONCE);
  c.clientFirst();
  c.clientFinal(SERVER_FIRST);
  assert.throws(() => c.verifyServerFinal('v=' + Buffer.alloc(32).toString('base64')), ScramError);
  const d = new ScramClient('pencil', 'user', NONCE);
  d.clientFirst();
  d.clientFinal(SERVER_FIRST);
  assert.throws(() => d.verifyServerFinal('e=invalid-proof'), /invalid-proof/);
  const e = new ScramClient('pencil', 'user', NONCE);
  e.clientFirst();
  assert.throws(() => e.clientFinal('r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'), /nonce/);
  const f = new ScramClient('pencil', 'user', NONCE);
  f.clientFirst();
  assert.throws(() => f.clientFinal(`r=${NONCE}x,s=AAAA,i=100000000`), /iteration/);
});

test('SCRAM: errors never contain the password', () => {
  const c = new ScramClient('hunter2-secret', '', NONCE);
  c.clientFirst();
  try {
    c.clientFinal('garbage');
    assert.fail('expected a throw');
  } catch (err) {
    assert.ok(!String((err as Error).message).includes('hunter2'));
  }
});

test('md5 password answer matches PostgreSQL\'s construction', () => {
  const salt = Buffer.from([1, 2, 3, 4]);
  const inner = createHash('md5').update('secretalice').digest('hex');
  const expected = 'md5' + createHash('md5').update(inner + '\x01\x02\x03\x04', 'latin1').digest('hex');
  assert.equal(md5Password('alice', 'secret', salt), expected);
});
