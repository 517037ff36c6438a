import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { decode, seal, verifyChain, GENESIS_HASH, SessionChain, type ChainedEvent } from './index.ts';
import { nativeSealer, nativeChainState } from './native.ts';

const addon = nativeSealer.addon;

test('the native sealer is built and in use (npm install builds it; a machine without cc must say so here)', () => {
  assert.ok(addon, `native sealer: ${nativeSealer.reason}`);
  assert.equal(new SessionChain('s', { gateway_id: 'g', gateway_version: 'v' }).native, true);
  assert.equal(new SessionChain('s', { gateway_id: 'g', gateway_version: 'v' }, { sealer: 'js' }).native, false);
});

test('native frames are byte-identical to the JS sealer and to the generic canonical sealer', () => {
  const ids = [
    { s: '3f1c2d4e-0000-4000-8000-000000000001', g: 'gw-1', v: '0.1.0' },
    { s: 'sess-ü-\u2028-"q"\\', g: 'gw-ß\\\n', v: '1.0.0-β' },
  ];
  for (const id of ids) {
    const gw = { gateway_id: id.g, gateway_version: id.v };
    const native = new SessionChain(id.s, gw);
    const js = new SessionChain(id.s, gw, { sealer: 'js' });
    assert.equal(native.native, true);
    let prev = GENESIS_HASH;
    for (let i = 0; i < 400; i++) {
      // Sizes across the slab boundary (256 KiB) and beyond it, empty payloads, odd type letters.
      const size = i % 97 === 5 ? randomInt(200_000, 600_000) : randomInt(0, 400);
      const data = randomBytes(size);
      const direction = i % 2 ? 's2c' : 'c2s';
      const msgType = i % 7 === 0 ? undefined : i % 11 === 0 ? String.fromCharCode(randomInt(0, 0x2100)) : i % 13 === 0 ? '"' : String.fromCharCode(65 + randomInt(0, 26));
      const time = i === 3 ? 0 : i === 4 ? Number.MAX_SAFE_INTEGER : 1_700_000_000_000_000 + i * 977;
      if (i % 50 === 25) {
        // A non-frame event in between (sealed in JS either way) must keep both chains linked.
        const input = { type: 'ssh.request' as const, version: 1 as const, channel: 0, direction: 'c2s' as const, request: 'env', accepted: true, time };
        const a = native.next(input);
        const b = js.next(input);
        assert.equal(a.seq, b.seq);
        assert.equal(a.hash, decode(a.bytes).hash);
        prev = a.hash;
        // Different event ids, so different hashes: continue the JS chain from the native one.
        (js as unknown as { prevHash: string }).prevHash = a.hash;
        continue;
      }
      const fast = native.frame(direction, msgType, data, time);
      const event = decode(fast.bytes) as Extract<ChainedEvent, { type: 'frame' }>;
      assert.match(event.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const generic = seal({
        type: 'frame', version: 1, event_id: event.event_id, time, session_id: id.s, seq: fast.seq, prev_hash: prev,
        gateway_id: id.g, gateway_version: id.v, direction, ...(msgType === undefined ? {} : { msg_type: msgType }), data,
      });
      assert.ok(generic.bytes.equals(fast.bytes), `frame ${i} differs from the generic sealer`);
      assert.equal(fast.hash, generic.hash);
      assert.equal(native.lastHash, generic.hash);
      assert.equal(native.length, fast.seq + 1);
      prev = fast.hash;
      // The JS sealer, given the same event id, writes the same bytes.
      const before = (js as unknown as { prevHash: string }).prevHash;
      assert.equal(before, decode(fast.bytes).prev_hash);
      const viaJs = js.frame(direction, msgType, data, time);
      assert.equal(viaJs.seq, fast.seq);
      const jsEvent = decode(viaJs.bytes) as Extract<ChainedEvent, { type: 'frame' }>;
      const { hash: _hash, ...unsealed } = jsEvent;
      const rebuilt = seal({ ...unsealed, event_id: event.event_id, data });
      assert.ok(rebuilt.bytes.equals(fast.bytes), `frame ${i}: the JS sealer's bytes differ`);
      (js as unknown as { prevHash: string }).prevHash = fast.hash;
    }
  }
});

test('a natively sealed chain verifies, and views of one slab stay intact as later frames are sealed', () => {
  const chain = new SessionChain('a', { gateway_id: 'g', gateway_version: 'v' });
  const records: Buffer[] = [];
  const copies: Buffer[] = [];
  for (let i = 0; i < 3000; i++) {
    const r = chain.frame(i % 2 ? 's2c' : 'c2s', 'D', randomBytes(randomInt(0, 300)), 1 + i);
    records.push(r.bytes);
    copies.push(Buffer.from(r.bytes));
  }
  records.push(chain.next({ type: 'session.ended', version: 1, reason: 'client_closed', duration_us: 1, bytes_c2s: 0, bytes_s2c: 0, messages_c2s: 0, messages_s2c: 0 }).bytes);
  for (let i = 0; i < copies.length; i++) assert.ok(records[i]!.equals(copies[i]!), `record ${i} was overwritten`);
  const report = verifyChain(records);
  assert.equal(report.ok, true, report.problem);
  assert.equal(report.events, 3001);
  const ids = new Set(records.slice(0, 3000).map((r) => decode(r).event_id));
  assert.equal(ids.size, 3000, 'event ids repeat');
});

test('the addon refuses bad arguments with a TypeError instead of writing out of bounds', () => {
  assert.ok(addon);
  const state = nativeChainState('","gateway_id":"g","gateway_version":"v"', ',"session_id":"s","time":')!;
  const out = Buffer.alloc(4096);
  const data = Buffer.from('x');
  assert.throws(() => addon.sealFrame(out, 0, state, 0, undefined, 1, 'x' as never), TypeError);
  assert.throws(() => addon.sealFrame(out, 5000, state, 0, undefined, 1, data), TypeError);
  assert.throws(() => addon.sealFrame(out, 0, Buffer.alloc(10), 0, undefined, 1, data), TypeError);
  assert.throws(() => addon.sealFrame(out, 0, state, 0, undefined, -1, data), TypeError);
  assert.throws(() => addon.sealFrame(out, 0, state, 0, undefined, 1.5, data), TypeError);
  assert.throws(() => addon.sealFrame(out, 0, state, 0, 'Q' as never, 1, data), TypeError);
  const lying = Buffer.from(state);
  lying.writeUInt16LE(0xffff, 40); // a fragment length past the state's end
  assert.throws(() => addon.sealFrame(out, 0, lying, 0, undefined, 1, data), TypeError);
  // Too small an output: minus the size needed, nothing written, the chain unchanged.
  const small = Buffer.alloc(64);
  const before = Buffer.from(state);
  const r = addon.sealFrame(small, 0, state, 0, undefined, 1, data);
  assert.ok(r < -64, `expected minus the record size, got ${r}`);
  assert.ok(state.equals(before));
  assert.ok(small.equals(Buffer.alloc(64)));
  const end = addon.sealFrame(out, 10, state, 0, undefined, 1, data);
  assert.equal(end, 10 - r);
});

test('sealFrameInto seals in place (at any offset) the same bytes as the generic sealer; too little room seals nothing', () => {
  const gw = { gateway_id: 'gw-1', gateway_version: '0.1.0' };
  const chain = new SessionChain('in-place', gw);
  const out = Buffer.alloc(1 << 20);
  let at = 3;
  let prev = GENESIS_HASH;
  for (let i = 0; i < 50; i++) {
    const data = randomBytes(randomInt(0, 3000));
    const msgType = i % 5 === 0 ? undefined : 'D';
    const end = chain.sealFrameInto(out, at, 's2c', msgType, data, 1_700_000_000_000_000 + i);
    assert.ok(end > at + data.length);
    const bytes = out.subarray(at, end);
    const event = decode(bytes) as Extract<ChainedEvent, { type: 'frame' }>;
    const generic = seal({
      type: 'frame', version: 1, event_id: event.event_id, time: 1_700_000_000_000_000 + i, session_id: 'in-place', seq: i, prev_hash: prev,
      gateway_id: gw.gateway_id, gateway_version: gw.gateway_version, direction: 's2c', ...(msgType === undefined ? {} : { msg_type: msgType }), data,
    });
    assert.ok(generic.bytes.equals(bytes), `frame ${i}`);
    prev = generic.hash;
    at = end + (i % 3);
  }
  assert.equal(chain.length, 50);
  // No room: minus what it needs, nothing written, the chain unchanged.
  const tail = out.length - 10;
  const need = chain.sealFrameInto(out, tail, 'c2s', 'Q', Buffer.alloc(100), 1);
  assert.ok(need < -100);
  assert.equal(chain.length, 50);
  assert.equal(chain.lastHash, prev);
  assert.throws(() => new SessionChain('js', gw, { sealer: 'js' }).sealFrameInto(out, 0, 'c2s', 'Q', Buffer.alloc(1), 1), /native sealer/);
});
