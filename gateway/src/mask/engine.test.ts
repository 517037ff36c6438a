/** Unit tests of the value detectors, the strategies and the compiled plan, with true negatives. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findItems, ibanValid, luhnValid } from './detectors.ts';
import { partial } from './strategies.ts';
import { createMaskEngine } from './engine.ts';
import { loadPolicy, evaluate } from '../policy/index.ts';
import { DETECTORS, type Detector } from '../policy/schema.ts';

const ALL = new Set<Detector>(DETECTORS);
const found = (text: string, only?: Detector): string[] =>
  findItems(text, only ? new Set([only]) : ALL).map((i) => `${i.detector}:${text.slice(i.start, i.end)}`);

const POSITIVE: [Detector, string, string][] = [
  ['card', 'pay with 4111111111111111 now', '4111111111111111'],
  ['card', 'amex 3782-822463-10005', '3782-822463-10005'],
  ['card', 'mc 5555 5555 5555 4444.', '5555 5555 5555 4444'],
  ['card', '6011111111111117', '6011111111111117'],
  ['email', 'write to Alice.Smith+tag@mail.example.co.uk please', 'Alice.Smith+tag@mail.example.co.uk'],
  ['phone', 'call +1 (415) 555-2671 today', '+1 (415) 555-2671'],
  ['phone', 'office: +44 20 7946 0958', '+44 20 7946 0958'],
  ['phone', 'US (555) 123-4567', '(555) 123-4567'],
  ['phone', 'tel 555-123-4567', '555-123-4567'],
  ['us_ssn', 'ssn 123-45-6789', '123-45-6789'],
  ['iban', 'IBAN DE89 3704 0044 0532 0130 00 thanks', 'DE89 3704 0044 0532 0130 00'],
  ['iban', 'GB82WEST12345698765432', 'GB82WEST12345698765432'],
  ['jwt', 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU'],
  ['api_key', 'key AKIAIOSFODNN7EXAMPLE used', 'AKIAIOSFODNN7EXAMPLE'],
  ['api_key', 'ghp_0123456789abcdefghijABCDEFGHIJ012345', 'ghp_0123456789abcdefghijABCDEFGHIJ012345'],
  ['api_key', 'stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'],
  ['api_key', '{"client_secret": "q8Zr2LmX0vP4tW9yK1sB"}', 'q8Zr2LmX0vP4tW9yK1sB'],
  ['private_key', 'k=-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- end', '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----'],
  ['private_key', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk (truncated', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk (truncated'],
];

for (const [detector, text, item] of POSITIVE) {
  test(`${detector} finds ${JSON.stringify(item)}`, () => {
    assert.deepEqual(found(text, detector), [`${detector}:${item}`]);
  });
}

const NEGATIVE: [Detector, string][] = [
  ['card', '4111111111111112'], // 16 digits failing Luhn
  ['card', 'order 1234567890123456'], // fails Luhn
  ['card', '9999999999999995'], // passes Luhn, no issuer starts with 9
  ['card', 'v4111111111111111x'], // glued to letters
  ['card', '41111111111111111111111'], // too long
  ['email', 'not an email: a@b, user@localhost, @example.com'],
  ['phone', '2024-01-15 10:30:00'], // a timestamp
  ['phone', 'version 1.2.3.4 and 3.14159'],
  ['phone', 'id 12345'],
  ['us_ssn', '000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000'],
  ['us_ssn', '123456789'], // undashed: too ambiguous to call an SSN
  ['iban', 'DE89 3704 0044 0532 0130 01'], // mod-97 fails
  ['iban', 'XX89370400440532013000'], // no such country
  ['jwt', 'eyJ.notajwt'],
  ['api_key', 'password = aaaaaaaaaaaaaaaaaaaa'], // no entropy
  ['api_key', 'sk_live_short'],
  ['private_key', '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----'],
];

for (const [detector, text] of NEGATIVE) {
  test(`${detector} true negative: ${JSON.stringify(text.slice(0, 40))}`, () => {
    assert.deepEqual(found(text, detector), []);
  });
}

test('Luhn and mod-97 checks', () => {
  assert.ok(luhnValid('79927398713'));
  assert.ok(!luhnValid('79927398710'));
  assert.ok(ibanValid('DE89370400440532013000'));
  assert.ok(!ibanValid('DE89370400440532013001'));
});

test('overlapping items: one wins, the text is scanned once', () => {
  const t = 'token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU mail a@example.org';
  assert.deepEqual(found(t), ['jwt:eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU', 'email:a@example.org']);
});

test('partial keeps the shape and at most half of the letters and digits', () => {
  assert.equal(partial('4111 1111 1111 1111', 4), '**** **** **** 1111');
  assert.equal(partial('alice@example.com', 4), '*****@******e.com');
  assert.equal(partial('1234', 4), '**34');
  assert.equal(partial('', 4), '');
});

const POLICY = `version: 1
rules:
  - id: ssn-null
    mask: { columns: [public.customers.ssn], strategy: 'null' }
  - id: email-partial
    mask: { columns: ['*.email'], strategy: partial, keep_last: 4 }
  - id: cards
    mask: { detectors: [card, email], strategy: hash }
  - id: cards-stronger
    mask: { detectors: [card], strategy: redact }
`;

test('a plan resolves columns, detectors and strengths from the policy', () => {
  const policy = loadPolicy(POLICY);
  const d = evaluate(policy, { identity: { sub: 'a', groups: [], actor_kind: 'agent' }, target_id: 't', now: new Date() });
  const engine = createMaskEngine({ hashKey: 'k1' });
  const plan = engine.plan(d.mask);
  assert.equal(engine.plan(d.mask), plan, 'cached per directive set');
  assert.equal(plan.column('public.customers.ssn')?.strategy, 'null');
  assert.equal(plan.column('PUBLIC.Customers.SSN')?.strategy, 'null', 'case-insensitive');
  assert.equal(plan.column('other.customers.ssn'), undefined);
  assert.equal(plan.column('sales.leads.email')?.strategy, 'partial');
  assert.equal(plan.strongestColumn?.strategy, 'null');
  const r = plan.scan('card 4111111111111111, mail bob@example.com')!;
  assert.equal(r.text, 'card [REDACTED:card], mail hmac:' + r.text!.split('hmac:')[1]);
  assert.equal(r.hits.get('card'), 1);
  assert.equal(r.hits.get('email'), 1);
  assert.equal(plan.scan('nothing here 4111111111111112'), undefined);
});

test('hash: keyed, deterministic, differs per key; without a key it redacts', () => {
  const policy = loadPolicy(`version: 1\nrules:\n  - id: h\n    mask: { columns: [t.c], strategy: hash }\n`);
  const d = evaluate(policy, { identity: { sub: 'a', groups: [], actor_kind: 'agent' }, target_id: 't', now: new Date() });
  const choice = { strategy: 'hash' as const, rule_id: 'h' };
  const a = createMaskEngine({ hashKey: 'key-a' }).plan(d.mask);
  const b = createMaskEngine({ hashKey: 'key-b' }).plan(d.mask);
  const v = Buffer.from('123-45-6789');
  assert.equal(a.maskWhole('123-45-6789', v, choice), a.maskWhole('123-45-6789', v, choice));
  assert.match(a.maskWhole('123-45-6789', v, choice)!, /^hmac:[0-9a-f]{32}$/);
  assert.notEqual(a.maskWhole('123-45-6789', v, choice), b.maskWhole('123-45-6789', v, choice));
  assert.ok(!a.maskWhole('123-45-6789', v, choice)!.includes('6789'));
  assert.equal(createMaskEngine().plan(d.mask).maskWhole('x', Buffer.from('x'), choice), '[REDACTED]');
});

test('null strategy on a detected item nulls the whole value', () => {
  const policy = loadPolicy(`version: 1\nrules:\n  - id: n\n    mask: { detectors: [us_ssn], strategy: 'null' }\n`);
  const d = evaluate(policy, { identity: { sub: 'a', groups: [], actor_kind: 'agent' }, target_id: 't', now: new Date() });
  const r = createMaskEngine().plan(d.mask).scan('ssn is 123-45-6789')!;
  assert.equal(r.text, null);
});
