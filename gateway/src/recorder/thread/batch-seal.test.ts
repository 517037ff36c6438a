/**
 * The native batch sealer (seal_frame.c sealFrames, through EventSink.appendFrames) on the
 * recorder thread: runs of frames sealed in one call must give exactly the records the per-frame
 * path gives, and leave to that path every op it does not take (events, frames of chains it has
 * no state for, msg_types to escape), in order; a record larger than the room it was given gets
 * room and is sealed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { decode, seal, verifyChain, SessionChain, type ChainedEvent } from '@vigil/schemas';
import { nativeSealer } from '@vigil/schemas/native';
import type { Producer } from '@vigil/eventlog/types';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { parseLocalEventLogConfig } from '@vigil/eventlog/local/config';
import { consumeN, tempDir } from '@vigil/eventlog/local/testutil';
import { MemoryProducer } from '../../protocols/pg/testkit.ts';
import { EventSink } from '../sink.ts';
import { serveRecorder, type RecorderHostOptions } from './host.ts';
import { ChainRing } from './chain-ring.ts';
import { BatchReader, BatchWriter, type WireBatch } from './wire.ts';

const SINK = { topic: 't', high_water_bytes: 1 << 30, low_water_bytes: 1 << 29, retry_backoff_ms: 5 };
const GW = { gateway_id: 'gw-batch', gateway_version: '0.0.0-test' };
const addon = nativeSealer.addon;

/** Count the frames the native batch sealer took (wraps the addon's function for one test). */
function countBatchSealed(): { frames: number; restore(): void } {
  const original = addon!.sealFrames;
  const counter = {
    frames: 0,
    restore: () => {
      addon!.sealFrames = original;
    },
  };
  addon!.sealFrames = (batch, pos, end, run, runAt, chains, io) => {
    try {
      return original(batch, pos, end, run, runAt, chains, io);
    } finally {
      counter.frames += io[1]!;
    }
  };
  return counter;
}

/** Post one batch (filled by `fill`, cut to `cut` bytes if given) to a recorder host; what reached the producer. */
async function throughHost(
  fill: (w: BatchWriter) => void,
  opts: { producer?: Producer; cut?: number; host?: RecorderHostOptions } = {},
): Promise<{ records: MemoryProducer['records']; faults: unknown[] }> {
  const producer = opts.producer ?? new MemoryProducer();
  const sink = new EventSink(producer, SINK);
  const { port1, port2 } = new MessageChannel();
  const faults: unknown[] = [];
  const host = serveRecorder(port2, sink, { error: (o) => faults.push(o) }, opts.host);
  const w = new BatchWriter(64);
  try {
    fill(w);
  } catch (err) {
    host.close();
    port1.close();
    throw err;
  }
  const batch = w.take()!;
  if (opts.cut !== undefined) batch.length = opts.cut;
  const processed = new Promise<void>((resolve) =>
    port1.on('message', (m: { op: string }) => {
      if (m.op === 'fault') faults.push(m);
      if (m.op === 'processed') resolve();
    }),
  );
  port1.postMessage({ op: 'batch', id: 1, ...batch }, [batch.buffer]);
  await processed;
  await sink.drain();
  host.close();
  port1.close();
  return { records: producer instanceof MemoryProducer ? producer.records : [], faults };
}

/** The data of each record, as text. */
const texts = (records: MemoryProducer['records']) => records.map((r) => Buffer.from((decode(r.value) as Extract<ChainedEvent, { type: 'frame' }>).data).toString());

/** The generic canonical sealer's bytes for a decoded frame (its own event id and prev hash). */
function resealed(e: Extract<ChainedEvent, { type: 'frame' }>): Buffer {
  const { hash: _hash, ...unsealed } = e;
  return seal(unsealed).bytes;
}

test('the native batch sealer is in use on the recorder thread', () => {
  assert.ok(addon, `native sealer: ${nativeSealer.reason}`);
  assert.equal(typeof addon.sealFrames, 'function');
});

test('runs of frames sealed in one call are exactly the per-frame records; what it leaves keeps its place', async () => {
  const ids = ['00000000-0000-4000-8000-0000000000a1', 'sess-ü-"q"\\', '00000000-0000-4000-8000-0000000000a3'];
  const time = 1_795_000_000_000_000;
  const big = Buffer.alloc(300_000, 0x5a); // far more than the room asked for before a call
  type Sent = { key: string; direction: 'c2s' | 's2c'; msgType: string | undefined; time: number; data: Buffer } | { key: string; event: string };
  const sent: Sent[] = [];
  const counter = countBatchSealed();
  let result: Awaited<ReturnType<typeof throughHost>>;
  try {
    result = await throughHost((w) => {
      ids.forEach((id, slot) => w.open(slot, id, GW));
      // Plain ones (incl. the longest the batch carries) sealed natively; '', DEL, quote,
      // backslash and non-ASCII left to the per-op path, which escapes them.
      const types = ['Q', 'D', undefined, '"', 'ÿ', 'channel-data', '\\', 'Z', 'x'.repeat(254), '', '\x7f', '~ !'];
      for (let i = 0; i < 240; i++) {
        const slot = i % 3;
        const key = ids[slot]!;
        if (i % 37 === 36) {
          w.event(slot, { type: 'policy.limit', version: 1, rule_id: 'r', limit: 'max_rows', value: i, observed: i + 1, time: time + i } as never);
          sent.push({ key, event: 'policy.limit' });
          continue;
        }
        const data = i === 101 ? big : Buffer.from(`message ${i}`);
        const msgType = types[i % types.length];
        const direction = i % 2 ? 's2c' : 'c2s';
        w.frame(slot, direction, msgType, time + i, data);
        sent.push({ key, direction, msgType, time: time + i, data });
      }
    });
  } finally {
    counter.restore();
  }
  const { records, faults } = result;
  assert.deepEqual(faults, []);
  assert.equal(records.length, sent.length);
  // The native calls took the frames whose msg_type is plain; events and the msg_types to
  // escape went op by op.
  const plain = sent.filter((s) => 'data' in s && (s.msgType === undefined || /^[\x20-\x7e]+$/.test(s.msgType)) && !/["\\]/.test(s.msgType ?? ''));
  assert.ok(sent.some((s) => 'data' in s && s.msgType === '') && sent.some((s) => 'data' in s && s.msgType?.length === 254));
  assert.equal(counter.frames, plain.length);
  assert.ok(counter.frames > 100);
  for (const [i, s] of sent.entries()) {
    const r = records[i]!;
    assert.equal(r.key, s.key, `record ${i}: key`);
    const e = decode(r.value);
    if ('event' in s) {
      assert.equal(e.type, s.event);
      continue;
    }
    assert.equal(e.type, 'frame', `record ${i}`);
    const f = e as Extract<ChainedEvent, { type: 'frame' }>;
    assert.deepEqual([f.direction, f.msg_type, f.time, f.session_id], [s.direction, s.msgType, s.time, s.key], `record ${i}`);
    assert.ok(Buffer.from(f.data).equals(s.data), `record ${i}: data`);
    assert.ok(resealed(f).equals(r.value), `record ${i}: not the canonical sealer's bytes`);
  }
  for (const id of ids) {
    const values = records.filter((r) => r.key === id).map((r) => r.value);
    assert.deepEqual(values.map((v) => decode(v).seq), [...values.keys()]);
    assert.equal(verifyChain(values).ok, true, `chain of ${id}`);
  }
});

test('a frame for an unknown slot is refused alone; the frames around it are sealed natively', async () => {
  const id = '00000000-0000-4000-8000-0000000000b1';
  const counter = countBatchSealed();
  let result: Awaited<ReturnType<typeof throughHost>>;
  try {
    result = await throughHost((w) => {
      w.open(0, id, GW);
      w.frame(0, 'c2s', 'Q', 1, Buffer.from('before'));
      w.frame(9, 'c2s', 'Q', 2, Buffer.from('nobody'));
      w.frame(0, 's2c', 'Z', 3, Buffer.from('after'));
    });
  } finally {
    counter.restore();
  }
  assert.equal(counter.frames, 2);
  assert.equal(result.faults.length, 1); // the refusal, logged
  assert.deepEqual(result.records.map((r) => Buffer.from((decode(r.value) as Extract<ChainedEvent, { type: 'frame' }>).data).toString()), ['before', 'after']);
  assert.equal(verifyChain(result.records.map((r) => r.value)).ok, true);
});

test('sealFrames refuses bad arguments with a TypeError and writes nothing', () => {
  const run = Buffer.alloc(1024);
  const io = new Float64Array(4);
  const w = new BatchWriter(64);
  w.frame(0, 'c2s', 'Q', 1, Buffer.from('x'));
  const b = w.take()!;
  const batch = Buffer.from(b.buffer, 0, b.length);
  const ring = new ChainRing(8);
  assert.throws(() => addon!.sealFrames(batch, 0, batch.length + 1, run, 0, ring, io), /bad batch range/);
  assert.throws(() => addon!.sealFrames(batch, 0, batch.length, run, 2000, ring, io), /bad run offset/);
  assert.throws(() => addon!.sealFrames(batch, 0, batch.length, run, 0, {} as never, io), /chains must be|chains.owners/);
  assert.throws(() => addon!.sealFrames(batch, 0, batch.length, run, 0, { owners: new Float64Array(0), states: [], keys: [] }, io), /chains.owners/);
  assert.throws(() => addon!.sealFrames(batch, 0, batch.length, run, 0, ring, new Float64Array(2)), /io must be/);
  // No chain for slot 0: nothing sealed, the op is left where it is.
  assert.equal(addon!.sealFrames(batch, 0, batch.length, run, 0, ring, io), 0);
  assert.deepEqual([...io], [0, 0, 0, 0]);
  assert.ok(run.equals(Buffer.alloc(1024)));
});

/** A ring with slot 0's chain, and a batch of frames for it (`times` as given, data 'f<i>'). */
function framesFor(times: number[]): { batch: Buffer; ring: ChainRing; chain: SessionChain; ends: number[] } {
  const chain = new SessionChain('00000000-0000-4000-8000-0000000000c1', GW);
  const ring = new ChainRing(8);
  ring.set(0, chain.nativeState!, Buffer.from(chain.sessionId));
  const w = new BatchWriter(64);
  const ends: number[] = [];
  times.forEach((t, i) => {
    w.frame(0, 'c2s', 'Q', t, Buffer.from(`f${i}`));
    ends.push(w.length);
  });
  const b = w.take()!;
  return { batch: Buffer.from(b.buffer, 0, b.length), ring, chain, ends };
}

test('a batch cut at any byte: only the whole frames before the cut are sealed, and the reader refuses the cut one', () => {
  const { batch, ends } = framesFor([1, 2, 3]);
  for (let cut = 0; cut <= batch.length; cut++) {
    const { ring, chain } = framesFor([1, 2, 3]);
    const run = Buffer.alloc(4096);
    const io = new Float64Array(4);
    const stop = addon!.sealFrames(batch, 0, cut, run, 0, ring, io);
    const whole = ends.filter((e) => e <= cut).length;
    assert.equal(io[1], whole, `cut at ${cut}`);
    assert.equal(stop, whole === 0 ? 0 : ends[whole - 1], `cut at ${cut}`);
    assert.equal(chain.length, whole, `cut at ${cut}: the chain advanced past what was sealed`);
    // The per-op reader, given the rest, refuses a cut-short op instead of reading a shorter frame.
    const reader = new BatchReader({ buffer: batch.buffer as ArrayBuffer, length: cut, events: [] } satisfies WireBatch);
    reader.seek(stop);
    if (stop < cut) assert.throws(() => reader.next(), /cut short|out of range/, `cut at ${cut}`);
    else assert.equal(reader.next(), false);
  }
  // A hostile data length (0xffffffff) is refused the same way.
  const { ring } = framesFor([1]);
  const hostile = Buffer.alloc(ends[0]!); // its own ArrayBuffer (the reader reads from its start)
  batch.copy(hostile, 0, 0, ends[0]!);
  hostile.writeUInt32LE(0xffffffff, ends[0]! - 'f0'.length - 4);
  const io = new Float64Array(4);
  assert.equal(addon!.sealFrames(hostile, 0, hostile.length, Buffer.alloc(4096), 0, ring, io), 0);
  assert.equal(io[1], 0);
  assert.throws(() => new BatchReader({ buffer: hostile.buffer as ArrayBuffer, length: hostile.length, events: [] }).next(), /cut short/);
});

test('a frame whose time is not a safe integer is left to the per-op path (which refuses it)', () => {
  for (const bad of [Number.NaN, -1, 1.5, 2 ** 53, Infinity]) {
    const { batch, ring, chain, ends } = framesFor([7, bad, 9]);
    const io = new Float64Array(4);
    const stop = addon!.sealFrames(batch, 0, batch.length, Buffer.alloc(4096), 0, ring, io);
    assert.equal(stop, ends[0], `time ${bad}`);
    assert.equal(io[1], 1);
    assert.equal(chain.length, 1);
  }
});

test('a cut-short batch through the host: the whole frames are recorded, the rest is reported, the chain verifies', async () => {
  const id = '00000000-0000-4000-8000-0000000000d1';
  const fill = (w: BatchWriter) => {
    w.open(0, id, GW);
    w.frame(0, 'c2s', 'Q', 1, Buffer.from('one'));
    w.frame(0, 's2c', 'Z', 2, Buffer.from('two'));
  };
  const probe = new BatchWriter(64);
  fill(probe);
  const { records, faults } = await throughHost(fill, { cut: probe.length - 1 }); // the last byte of 'two' missing
  assert.deepEqual(texts(records), ['one']);
  assert.ok(faults.some((f) => /cut short/.test(JSON.stringify(f))), JSON.stringify(faults));
  assert.equal(verifyChain(records.map((r) => r.value)).ok, true);
});

test('past the ring size, a long-lived session\'s frames go the per-op way, exact and in order', async () => {
  const ids = ['a', 'b', 'c'].map((x) => `00000000-0000-4000-8000-0000000000e${x}`);
  const counter = countBatchSealed();
  let result: Awaited<ReturnType<typeof throughHost>>;
  try {
    result = await throughHost(
      (w) => {
        ids.forEach((id, slot) => w.open(slot, id, GW)); // slot 2 takes slot 0's entry in a ring of 2
        for (let i = 0; i < 30; i++) w.frame(i % 3, i % 2 ? 's2c' : 'c2s', 'D', 100 + i, Buffer.from(`m${i}`));
      },
      { host: { chainRingSize: 2 } },
    );
  } finally {
    counter.restore();
  }
  assert.deepEqual(result.faults, []);
  assert.equal(counter.frames, 20); // slots 1 and 2; slot 0's ten went op by op
  assert.deepEqual(texts(result.records), [...Array(30).keys()].map((i) => `m${i}`));
  for (const id of ids) {
    const values = result.records.filter((r) => r.key === id).map((r) => r.value);
    assert.equal(values.length, 10);
    assert.equal(verifyChain(values).ok, true);
  }
});

test('natively sealed records go into the local log as they are and read back with their CRCs', async (t) => {
  const dir = await tempDir(t);
  const open = () => LocalEventLog.open(parseLocalEventLogConfig({ dir }));
  let log = await open();
  await log.ensureTopics(['t']);
  const id = '00000000-0000-4000-8000-0000000000f1';
  const big = Buffer.alloc(100_000, 3);
  await throughHost(
    (w) => {
      w.open(0, id, GW);
      for (let i = 0; i < 50; i++) w.frame(0, i % 2 ? 's2c' : 'c2s', 'D', 1000 + i, i === 20 ? big : Buffer.from(`row ${i}`));
    },
    { producer: log.producer() },
  );
  await log.close();
  log = await open(); // recovery reads every record back and checks its CRC
  const got = await consumeN(log, 'g', 't', 50);
  await log.close();
  assert.equal(got.length, 50);
  assert.ok(got.every((r) => r.key === id));
  assert.equal(verifyChain(got.map((r) => r.value)).ok, true);
  assert.ok(Buffer.from((decode(got[20]!.value) as Extract<ChainedEvent, { type: 'frame' }>).data).equals(big));
});
