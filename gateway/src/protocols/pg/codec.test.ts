import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  MessageReader,
  ProtocolViolation,
  StartupReader,
  errorResponse,
  parseErrorFields,
  parseStartupPacket,
  backendKeyData,
  cancelRequest,
  startupMessage,
  negotiateProtocolVersion,
} from './codec.ts';
import { FRONTEND_TYPE_VALID, TYPE_LETTER } from './messages.ts';

const fixture = (name: string): Buffer => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));

/** Split a typed-message stream into messages by walking the length fields (the oracle). */
function oracle(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < stream.length; ) {
    const total = 1 + stream.readUInt32BE(off + 1);
    out.push(stream.subarray(off, off + total));
    off += total;
  }
  return out;
}

function readAll(reader: MessageReader, chunks: Buffer[]): { types: string[]; messages: Buffer[] } {
  const types: string[] = [];
  const messages: Buffer[] = [];
  for (const c of chunks) {
    const err = reader.push(c, (t, m) => {
      types.push(TYPE_LETTER[t]!);
      messages.push(Buffer.from(m));
    });
    assert.equal(err, undefined);
  }
  return { types, messages };
}

const c2sAll = fixture('session.c2s.bin');
const startupLen = c2sAll.readUInt32BE(0);
const c2s = c2sAll.subarray(startupLen); // typed messages after the StartupMessage
const s2c = fixture('session.s2c.bin');

test('fixtures hold the expected message sequence', () => {
  const s2cTypes = oracle(s2c).map((m) => TYPE_LETTER[m[0]!]);
  assert.equal(s2cTypes[0], 'R');
  assert.ok(s2cTypes.includes('K') && s2cTypes.includes('T') && s2cTypes.includes('D') && s2cTypes.includes('E'));
  assert.equal(s2cTypes.at(-1), 'Z');
  const c2sTypes = oracle(c2s).map((m) => TYPE_LETTER[m[0]!]);
  assert.deepEqual(c2sTypes.slice(0, 1), ['Q']);
  assert.ok(c2sTypes.includes('P') && c2sTypes.includes('B') && c2sTypes.includes('E'));
  assert.equal(c2sTypes.at(-1), 'X');
});

for (const [name, stream] of [['s2c', s2c], ['c2s', c2s]] as const) {
  test(`MessageReader: every single split point of the ${name} fixture yields the same messages`, () => {
    const expected = oracle(stream);
    for (let i = 0; i <= stream.length; i++) {
      const r = new MessageReader({ maxFrameBytes: 1 << 20 });
      const { messages } = readAll(r, [stream.subarray(0, i), stream.subarray(i)]);
      assert.equal(messages.length, expected.length, `split at ${i}`);
      messages.forEach((m, k) => assert.ok(m.equals(expected[k]!), `split at ${i}, message ${k}`));
      assert.equal(r.buffered, 0);
    }
  });

  test(`MessageReader: byte-at-a-time and random chunkings of the ${name} fixture`, () => {
    const expected = oracle(stream);
    const bytes = [...stream].map((b) => Buffer.from([b]));
    assert.deepEqual(readAll(new MessageReader({ maxFrameBytes: 1 << 20 }), bytes).messages, expected.map((m) => Buffer.from(m)));
    let seed = 42;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n) + 1;
    for (let round = 0; round < 200; round++) {
      const chunks: Buffer[] = [];
      for (let off = 0; off < stream.length; ) {
        const n = Math.min(rnd(40), stream.length - off);
        chunks.push(stream.subarray(off, off + n));
        off += n;
      }
      const { messages } = readAll(new MessageReader({ maxFrameBytes: 1 << 20 }), chunks);
      assert.equal(Buffer.concat(messages).compare(stream), 0);
    }
  });
}

test('MessageReader: whole messages inside a chunk are views into it (no copy)', () => {
  const r = new MessageReader({ maxFrameBytes: 1 << 20 });
  const seen: Buffer[] = [];
  r.push(s2c, (_t, m) => seen.push(m));
  assert.ok(seen.every((m) => m.buffer === s2c.buffer));
});

test('MessageReader: a borrowed chunk may be overwritten once push returns (the head of a split message was copied)', () => {
  // The stream cut at every offset, each piece read into one reused buffer that is scribbled over
  // after each push: the messages still come out whole and exact.
  for (let cut = 1; cut < s2c.length; cut += 7) {
    const r = new MessageReader({ maxFrameBytes: 1 << 20 });
    const out: Buffer[] = [];
    const reused = Buffer.alloc(s2c.length);
    for (const piece of [s2c.subarray(0, cut), s2c.subarray(cut)]) {
      piece.copy(reused);
      r.push(reused.subarray(0, piece.length), (_t, m) => out.push(Buffer.from(m)), true);
      reused.fill(0xee);
    }
    assert.ok(Buffer.concat(out).equals(s2c), `cut at ${cut}`);
  }
});

test('MessageReader: an oversized length is refused from the header, before buffering', () => {
  const r = new MessageReader({ maxFrameBytes: 1024 });
  const prefix = oracle(c2s)[0]!; // one valid Query first
  const huge = Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]); // 'Q' with length 2^31-1
  let delivered = 0;
  const err = r.push(Buffer.concat([prefix, huge]), () => delivered++);
  assert.equal(delivered, 1);
  assert.equal(err?.code, 'GW_ERR_FRAME_TOO_LARGE');
  assert.equal(err?.offset, prefix.length);
  assert.equal(r.buffered, 0, 'nothing of the oversized frame is held');
  // Sticky: the stream is no longer framed.
  assert.equal(r.push(Buffer.from('Q'), () => delivered++)?.code, 'GW_ERR_FRAME_TOO_LARGE');
});

test('MessageReader: oversized header split across chunks is still refused before the body', () => {
  const r = new MessageReader({ maxFrameBytes: 1024 });
  assert.equal(r.push(Buffer.from([0x51, 0x00]), () => {}), undefined);
  const err = r.push(Buffer.from([0x10, 0x00, 0x00, 0x41]), () => {});
  assert.equal(err?.code, 'GW_ERR_FRAME_TOO_LARGE');
  assert.equal(err?.offset, 0);
});

test('MessageReader: invalid lengths and (client side) unknown types are protocol errors', () => {
  const r = new MessageReader({ maxFrameBytes: 1024 });
  assert.equal(r.push(Buffer.from([0x51, 0, 0, 0, 3]), () => {})?.code, 'GW_ERR_PROTOCOL');
  const v = new MessageReader({ maxFrameBytes: 1024, validType: (t) => FRONTEND_TYPE_VALID[t] === 1 });
  const err = v.push(Buffer.from('GET / HTTP/1.1\r\n'), () => {});
  assert.equal(err?.code, 'GW_ERR_PROTOCOL');
  assert.match(err!.message, /invalid message type 0x47/);
});

test('StartupReader + parseStartupPacket: captured StartupMessage, split at every point', () => {
  const startup = fixture('startup.c2s.bin');
  for (let i = 0; i <= startup.length; i++) {
    const r = new StartupReader(10_000);
    const a = r.push(startup.subarray(0, i));
    const got = a ?? r.push(startup.subarray(i));
    assert.ok(got, `split ${i}`);
    assert.equal(got.rest.length, 0);
    const p = parseStartupPacket(got.packet);
    assert.equal(p.kind, 'startup');
    if (p.kind === 'startup') {
      assert.equal(p.major, 3);
      assert.equal(p.minor, 0);
      assert.equal(p.params.get('user'), 'postgres');
      assert.equal(p.params.get('application_name'), 'vigil-fixture');
    }
  }
});

test('parseStartupPacket: captured SSLRequest and CancelRequest; GSSENCRequest', () => {
  assert.deepEqual(parseStartupPacket(fixture('sslrequest.c2s.bin')), { kind: 'ssl' });
  const cancel = parseStartupPacket(fixture('cancel.c2s.bin'));
  assert.equal(cancel.kind, 'cancel');
  if (cancel.kind === 'cancel') assert.ok(cancelRequest(cancel.pid, cancel.secret).equals(fixture('cancel.c2s.bin')));
  const gss = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
  assert.deepEqual(parseStartupPacket(gss), { kind: 'gssenc' });
});

test('StartupReader: bad and oversized lengths are refused before buffering; rest is returned', () => {
  assert.throws(() => new StartupReader(10_000).push(Buffer.from([0, 0, 0, 4, 0, 3, 0, 0])), (e: ProtocolViolation) => e.code === 'GW_ERR_STARTUP_INVALID');
  assert.throws(() => new StartupReader(10_000).push(Buffer.from([0x7f, 0xff, 0xff, 0xff])), (e: ProtocolViolation) => e.code === 'GW_ERR_FRAME_TOO_LARGE');
  const ssl = fixture('sslrequest.c2s.bin');
  const got = new StartupReader(10_000).push(Buffer.concat([ssl, Buffer.from('junk')]));
  assert.equal(got?.rest.toString(), 'junk');
});

test('parseStartupPacket: unknown version, missing user, unterminated parameters', () => {
  const v = (major: number, minor: number, body = 'user\0u\0\0'): Buffer => {
    const b = Buffer.alloc(8 + body.length);
    b.writeUInt32BE(b.length, 0);
    b.writeUInt16BE(major, 4);
    b.writeUInt16BE(minor, 6);
    b.write(body, 8, 'latin1');
    return b;
  };
  const code = (b: Buffer): string => {
    try {
      parseStartupPacket(b);
      return 'ok';
    } catch (e) {
      return (e as ProtocolViolation).code;
    }
  };
  assert.equal(code(v(3, 0)), 'ok');
  assert.equal(code(v(3, 2)), 'ok');
  assert.equal(code(v(2, 0)), 'GW_ERR_PROTOCOL_VERSION');
  assert.equal(code(v(1234, 5681)), 'GW_ERR_PROTOCOL_VERSION'); // 1234.5678 would be CancelRequest
  assert.equal(code(v(3, 0, 'database\0d\0\0')), 'GW_ERR_STARTUP_INVALID');
  assert.equal(code(v(3, 0, 'user\0u\0')), 'GW_ERR_STARTUP_INVALID');
  assert.equal(code(v(3, 0, 'user\0u')), 'GW_ERR_STARTUP_INVALID');
  assert.equal(code(v(3, 0, 'user\0u\0\0x')), 'GW_ERR_STARTUP_INVALID');
});

test('builders: ErrorResponse round-trips; StartupMessage, BackendKeyData, NegotiateProtocolVersion shapes', () => {
  const e = errorResponse({ severity: 'FATAL', code: '28P01', message: 'token expired', hint: 'get a new token' });
  assert.equal(e[0], 0x45);
  assert.equal(e.readUInt32BE(1), e.length - 1);
  assert.deepEqual(parseErrorFields(e), { S: 'FATAL', V: 'FATAL', C: '28P01', M: 'token expired', H: 'get a new token' });
  const startup = fixture('startup.c2s.bin');
  const p = parseStartupPacket(startup);
  assert.ok(p.kind === 'startup' && startupMessage(p.params).equals(startup));
  const k = backendKeyData(0x01020304, Buffer.from([9, 8, 7, 6]));
  assert.deepEqual([...k], [0x4b, 0, 0, 0, 12, 1, 2, 3, 4, 9, 8, 7, 6]);
  const v = negotiateProtocolVersion(0, ['_pq_.x']);
  assert.equal(v.readUInt32BE(1), v.length - 1);
  assert.equal(v.readUInt32BE(9), 1);
});
