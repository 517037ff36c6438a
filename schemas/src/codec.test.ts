import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decode, seal, verifyChain, GENESIS_HASH, SessionChain, validateEvent, canonicalJson, type ChainedEvent } from './index.ts';
import { sealFixtureChain } from './fixtures.ts';

const golden = JSON.parse(readFileSync(new URL('../fixtures/chain.v1.json', import.meta.url), 'utf8')) as { hash: string; hex: string }[];

test('sealing the fixture chain reproduces the golden bytes and hashes', () => {
  assert.deepEqual(sealFixtureChain(), golden);
});

test('golden records decode, validate against their schemas and verify as a chain', () => {
  const records = golden.map((g) => Buffer.from(g.hex, 'hex'));
  for (const r of records) {
    const event = decode(r);
    assert.deepEqual(validateEvent(event), [], `${event.type} invalid`);
  }
  const report = verifyChain(records);
  assert.equal(report.ok, true, report.problem);
  assert.equal(report.events, 3);
  assert.equal(report.lastHash, golden[2]!.hash);
});

test('frame payload stays binary: raw bytes follow the header, not base64', () => {
  const data = Buffer.from([0, 1, 2, 255, 254, 0x51]);
  const { bytes } = seal({
    type: 'frame', version: 1, event_id: 'e', time: 1, session_id: 's', seq: 0, prev_hash: GENESIS_HASH,
    gateway_id: 'g', gateway_version: 'v', direction: 's2c', data,
  });
  assert.deepEqual(bytes.subarray(bytes.length - data.length), data);
  const event = decode(bytes) as Extract<ChainedEvent, { type: 'frame' }>;
  assert.deepEqual(Buffer.from(event.data), data);
});

test('tampering with any byte, reordering or dropping an event breaks verification', () => {
  const chain = new SessionChain('s-1', { gateway_id: 'g', gateway_version: 'v' });
  const records = Array.from({ length: 5 }, (_, i) =>
    chain.next({ type: 'frame', version: 1, direction: i % 2 ? 's2c' : 'c2s', data: Buffer.from(`m${i}`) }).bytes,
  );
  assert.equal(verifyChain(records).ok, true);
  const tampered = records.map((r) => Buffer.from(r));
  tampered[2]![tampered[2]!.length - 1] ^= 1;
  assert.match(verifyChain(tampered).problem ?? '', /seq 2: hash/);
  assert.match(verifyChain([records[0]!, records[2]!]).problem ?? '', /seq 2: expected 1/);
  assert.match(verifyChain([records[1]!, records[0]!]).problem ?? '', /seq 1: expected 0/);
});

test('validateEvent reports unknown types and missing members', () => {
  assert.deepEqual(validateEvent({ type: 'nope', version: 1 }), ['unknown event type/version nope@1']);
  const errors = validateEvent({ type: 'session.ended', version: 1 });
  assert.ok(errors.some((e) => e.includes('reason')), errors.join('\n'));
});

test('canonical JSON sorts keys, omits undefined, refuses non-integers', () => {
  assert.equal(canonicalJson({ b: 1, a: [true, null, 'x'], c: undefined }), '{"a":[true,null,"x"],"b":1}');
  assert.throws(() => canonicalJson({ x: 1.5 }), /non-integer/);
});

test('decode refuses truncated, foreign and lying records', () => {
  assert.throws(() => decode(Buffer.alloc(10)), /too short/);
  const { bytes } = seal({
    type: 'session.ended', version: 1, event_id: 'e', time: 1, session_id: 's', seq: 0, prev_hash: GENESIS_HASH,
    gateway_id: 'g', gateway_version: 'v', reason: 'refused', duration_us: 0, bytes_c2s: 0, bytes_s2c: 0,
    messages_c2s: 0, messages_s2c: 0,
  });
  const foreign = Buffer.from(bytes); foreign[0] = 0;
  assert.throws(() => decode(foreign), /bad magic/);
  const lying = Buffer.from(bytes); lying.writeUInt32BE(1e6, 34);
  assert.throws(() => decode(lying), /exceeds record/);
});

test('the frame fast path is byte-identical to generic sealing (random frames, unicode ids)', async () => {
  const { randomBytes, randomInt } = await import('node:crypto');
  const ids = [
    { s: 'a1b2', g: 'gw-1', v: '0.1.0' },
    { s: 'sess-ü-\u2028-"q"', g: 'gw-ß\\', v: '1.0.0-β' },
  ];
  for (const id of ids) {
    const chain = new SessionChain(id.s, { gateway_id: id.g, gateway_version: id.v });
    let prev = GENESIS_HASH;
    for (let i = 0; i < 200; i++) {
      const data = randomBytes(randomInt(0, 300));
      const direction = i % 2 ? 's2c' : 'c2s';
      const msgType = i % 7 === 0 ? undefined : i % 11 === 0 ? String.fromCharCode(0x80 + randomInt(0, 128)) : String.fromCharCode(65 + randomInt(0, 26));
      const time = 1_700_000_000_000_000 + i;
      const fast = chain.frame(direction, msgType, data, time);
      const event = decode(fast.bytes) as Extract<ChainedEvent, { type: 'frame' }>;
      const generic = seal({
        type: 'frame', version: 1, event_id: event.event_id, time, session_id: id.s, seq: i, prev_hash: prev,
        gateway_id: id.g, gateway_version: id.v, direction, ...(msgType === undefined ? {} : { msg_type: msgType }), data,
      });
      assert.ok(generic.bytes.equals(fast.bytes), `frame ${i} differs`);
      assert.equal(fast.hash, generic.hash);
      prev = fast.hash;
    }
  }
});

test('ChainVerifier checks interleaved sessions in one pass and names the first problem of each', async () => {
  const { ChainVerifier } = await import('./verify.ts');
  const gw = { gateway_id: 'g', gateway_version: 'v' };
  const a = new SessionChain('a', gw);
  const b = new SessionChain('b', gw);
  const c = new SessionChain('c', gw);
  const rec: Buffer[] = [];
  for (let i = 0; i < 4; i++) {
    rec.push(a.frame('c2s', 'Q', Buffer.from(`a${i}`)).bytes, b.frame('s2c', 'D', Buffer.from(`b${i}`)).bytes, c.frame('c2s', 'Q', Buffer.from(`c${i}`)).bytes);
  }
  rec.push(a.next({ type: 'session.ended', version: 1, reason: 'client_closed', duration_us: 1, bytes_c2s: 0, bytes_s2c: 0, messages_c2s: 4, messages_s2c: 0 }).bytes);
  const tampered = rec.map((r) => Buffer.from(r));
  tampered[4]![tampered[4]!.length - 1] ^= 0x20; // b's seq 1
  const withoutC2 = tampered.filter((_, i) => i !== 8); // c's seq 2 dropped
  const v = new ChainVerifier();
  for (const r of withoutC2) v.push(r);
  v.push(Buffer.from('not an event'));
  const byId = Object.fromEntries(v.verdicts().map((s) => [s.session_id, s]));
  assert.equal(byId.a!.problem, undefined);
  assert.equal(byId.a!.ended, true);
  assert.equal(byId.a!.events, 5);
  assert.match(byId.b!.problem ?? '', /seq 1: hash/);
  assert.match(byId.c!.problem ?? '', /seq 3: expected 2/);
  assert.equal(v.undecodable, 1);
});
