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
import { decode, seal, verifyChain, type ChainedEvent } from '@vigil/schemas';
import { nativeSealer } from '@vigil/schemas/native';
import { MemoryProducer } from '../../protocols/pg/testkit.ts';
import { EventSink } from '../sink.ts';
import { serveRecorder } from './host.ts';
import { BatchWriter } from './wire.ts';

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
  addon!.sealFrames = (batch, pos, end, run, runAt, states, keys, io) => {
    const next = original(batch, pos, end, run, runAt, states, keys, io);
    counter.frames += io[1]!;
    return next;
  };
  return counter;
}

/** Post one batch to a recorder host and return what reached the producer. */
async function throughHost(fill: (w: BatchWriter) => void): Promise<{ records: MemoryProducer['records']; faults: unknown[] }> {
  const producer = new MemoryProducer();
  const sink = new EventSink(producer, SINK);
  const { port1, port2 } = new MessageChannel();
  const faults: unknown[] = [];
  const host = serveRecorder(port2, sink, { error: (o) => faults.push(o) });
  const w = new BatchWriter(64);
  try {
    fill(w);
  } catch (err) {
    host.close();
    port1.close();
    throw err;
  }
  const batch = w.take()!;
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
  return { records: producer.records, faults };
}

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
      const types = ['Q', 'D', undefined, '"', 'ÿ', 'channel-data', '\\', 'Z'];
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
  assert.throws(() => addon!.sealFrames(batch, 0, batch.length + 1, run, 0, [], [], io), /bad batch range/);
  assert.throws(() => addon!.sealFrames(batch, 0, batch.length, run, 2000, [], [], io), /bad run offset/);
  assert.throws(() => addon!.sealFrames(batch, 0, batch.length, run, 0, {} as never, [], io), /states must be an array/);
  assert.throws(() => addon!.sealFrames(batch, 0, batch.length, run, 0, [], [], new Float64Array(2)), /io must be/);
  // No state for slot 0: nothing sealed, the op is left where it is.
  assert.equal(addon!.sealFrames(batch, 0, batch.length, run, 0, [], [], io), 0);
  assert.deepEqual([...io], [0, 0, 0, 0]);
  // A frame op cut short (its data past `end`) is left to the JS reader, which reports it.
  assert.equal(addon!.sealFrames(batch, 0, batch.length - 1, run, 0, [Buffer.alloc(44)], [Buffer.from('k')], io), 0);
  assert.ok(run.equals(Buffer.alloc(1024)));
});
