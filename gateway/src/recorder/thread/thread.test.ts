/**
 * The recorder thread's link and host over a real MessageChannel (both ends on this thread here;
 * in the gateway the host runs on the log thread): what reaches the log must be exactly what
 * in-thread sealing produces, in order, with flow control and failures carried across.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { verifyChain, decode } from '@vigil/schemas';
import type { LogRecord, Producer } from '@vigil/eventlog/types';
import { MemoryProducer } from '../../protocols/pg/testkit.ts';
import { LogError } from '@vigil/eventlog/types';
import { EventSink } from '../sink.ts';
import { SessionRecorder } from '../recorder.ts';
import { RecorderLink } from './link.ts';
import { serveRecorder } from './host.ts';
import { BatchWriter, readBatch, OP_FRAME, OP_EVENT } from './wire.ts';

const SINK = { topic: 't', high_water_bytes: 1 << 20, low_water_bytes: 1 << 19, retry_backoff_ms: 5 };
const LINK = { flush_ms: 1, flush_bytes: 64 * 1024, high_water_bytes: 1 << 20, low_water_bytes: 1 << 19 };
const GW = { gateway_id: 'gw-t', gateway_version: '0.0.0-test' };
const quiet = { error() {} };

function pair(producer: Producer, link = LINK) {
  const { port1, port2 } = new MessageChannel();
  const sink = new EventSink(producer, SINK);
  const host = serveRecorder(port2, sink, quiet);
  const recorder = new RecorderLink(port1, link);
  return {
    recorder,
    sink,
    close() {
      recorder.close();
      host.close();
      port1.close();
    },
  };
}

test('wire: ops read back in order, frame bytes and msg types intact (incl. none and non-ASCII)', () => {
  const w = new BatchWriter(16); // tiny: forces growth
  w.open(7, 's-1', GW);
  const big = Buffer.alloc(100_000, 0xab);
  w.frame(7, 'c2s', 'Q', 123.5, Buffer.from('select 1'));
  w.frame(7, 's2c', undefined, 124, big);
  w.frame(7, 's2c', 'ÿ', 125, Buffer.alloc(0));
  w.event(7, { type: 'session.ended', version: 1 } as never, 3);
  w.close(7);
  const batch = w.take()!;
  assert.equal(w.take(), undefined);
  const ops = [...readBatch(batch)];
  assert.deepEqual(ops.map((o) => o.op), [1, 2, 2, 2, 3, 4]);
  const frames = ops.filter((o) => o.op === OP_FRAME);
  assert.deepEqual(frames.map((f) => [f.direction, f.msgType, f.time, f.data.length]), [['c2s', 'Q', 123.5, 8], ['s2c', undefined, 124, 100_000], ['s2c', 'ÿ', 125, 0]]);
  assert.ok(frames[1]!.data.equals(big));
  const ev = ops.find((o) => o.op === OP_EVENT)!;
  assert.equal(ev.reply, 3);
});

test('frames sealed on the recorder thread are byte-identical to in-thread sealing, and the chain verifies', async () => {
  const remote = new MemoryProducer();
  const p = pair(remote);
  const local = new MemoryProducer();
  const localSink = new EventSink(local, SINK);
  const sessions = ['a', 'b', 'c'].map((s) => `00000000-0000-4000-8000-00000000000${s}`);
  const time = 1_795_000_000_000_000;
  for (const [sink, out] of [[p.recorder, remote], [localSink, local]] as const) {
    void out;
    const recs = sessions.map((id) => sink.openChain(id, GW));
    for (let i = 0; i < 300; i++) {
      const r = recs[i % 3]!;
      r.frame(i % 2 ? 's2c' : 'c2s', i % 5 === 0 ? undefined : 'D', Buffer.from(`message ${i}`), time + i);
      if (i % 50 === 0) r.event({ type: 'policy.limit', version: 1, rule_id: 'r', limit: 'max_rows', value: i, observed: i + 1, time: time + i } as never);
    }
  }
  await p.recorder.drain();
  await localSink.drain();
  assert.equal(remote.records.length, local.records.length);
  assert.equal(remote.records.length, 306);
  // event_id is random per event: compare everything else, and verify each chain.
  const strip = (r: LogRecord) => {
    const e = decode(r.value) as unknown as Record<string, unknown>;
    return { key: r.key, seq: e.seq, type: e.type, direction: e.direction, msg_type: e.msg_type, time: e.time, data: e.data && Buffer.from(e.data as Uint8Array).toString() };
  };
  assert.deepEqual(remote.records.map(strip), local.records.map(strip));
  for (const id of sessions) {
    const values = remote.records.filter((r) => r.key === id).map((r) => r.value);
    assert.equal(values.length, 102);
    assert.deepEqual(values.map((v) => decode(v).seq), [...Array(102).keys()]);
    assert.equal(verifyChain(values).ok, true);
  }
  p.close();
});

test('wire: a recycled buffer is reused for the next batch; oversized ones and more than a few are let go', () => {
  const w = new BatchWriter(1024);
  w.open(1, 's-1', GW);
  const first = w.take()!;
  w.recycle(first.buffer);
  w.frame(1, 'c2s', 'Q', 1, Buffer.from('x'));
  assert.notEqual(w.take()!.buffer, first.buffer); // written before the buffer came back
  w.frame(1, 'c2s', 'Q', 1, Buffer.from('x'));
  const third = w.take()!;
  assert.equal(third.buffer, first.buffer, 'the recycled buffer carried the next batch');
  assert.deepEqual([...readBatch(third)].map((o) => o.op), [OP_FRAME]);
  w.recycle(new ArrayBuffer(1024 * 1024)); // grown far past the initial size by a burst
  w.frame(1, 'c2s', 'Q', 2, Buffer.from('y'));
  assert.equal(w.take()!.buffer.byteLength < 1024 * 1024, true, 'an oversized buffer is not kept');
  // At most four spares are kept: of six returned, the next six batches reuse four.
  const returned = Array.from({ length: 6 }, () => new ArrayBuffer(1024));
  for (const b of returned) w.recycle(b);
  const carried = new Set<ArrayBuffer>();
  for (let i = 0; i < 6; i++) {
    w.frame(1, 'c2s', 'Q', 3, Buffer.from('z'));
    carried.add(w.take()!.buffer);
  }
  assert.equal(returned.filter((b) => carried.has(b)).length, 4);
});

test('the recorder thread hands each batch buffer back, and frames recorded into reused buffers stay exact', async () => {
  const { port1, port2 } = new MessageChannel();
  const out = new MemoryProducer();
  const host = serveRecorder(port2, new EventSink(out, SINK), quiet);
  const returned: ArrayBuffer[] = [];
  port1.on('message', (m: { op: string; buffer?: ArrayBuffer }) => m.op === 'processed' && m.buffer && returned.push(m.buffer));
  const link = new RecorderLink(port1, LINK);
  const chain = link.openChain('00000000-0000-4000-8000-0000000000aa', GW);
  const sent: string[] = [];
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 5; i++) {
      const text = `round ${round} message ${i} ${'z'.repeat(round * 7)}`;
      sent.push(text);
      chain.frame('c2s', 'Q', Buffer.from(text), 1_795_000_000_000_000 + sent.length);
    }
    await new Promise((r) => setTimeout(r, 3)); // a flush per round, so later rounds land in returned buffers
  }
  await link.drain();
  assert.ok(returned.length >= 10, `buffers came back (${returned.length})`);
  const values = out.records.map((r) => r.value);
  assert.deepEqual(values.map((v) => Buffer.from((decode(v) as { data: Uint8Array }).data).toString()), sent);
  assert.equal(verifyChain(values).ok, true);
  link.close();
  host.close();
  port1.close();
});

test('SessionRecorder through the link: sealedEvent resolves with the record as appended', async () => {
  const out = new MemoryProducer();
  const p = pair(out);
  const rec = new SessionRecorder(p.recorder, '00000000-0000-4000-8000-0000000000aa', GW);
  rec.frame('c2s', 'Q', Buffer.from('select 1'));
  const sealed = await rec.sealedEvent({ type: 'policy.limit', version: 1, rule_id: 'r', limit: 'max_rows', value: 1, observed: 2 } as never);
  assert.equal(sealed.seq, 1);
  await p.recorder.drain();
  assert.equal(out.records.length, 2);
  assert.ok(out.records[1]!.value.equals(sealed.bytes));
  assert.equal(rec.length, 2);
  p.close();
});

test('pressure on the recorder thread reaches the link, and releases', async () => {
  const out = new MemoryProducer();
  let open!: () => void;
  out.gate = new Promise((r) => (open = r));
  const { port1, port2 } = new MessageChannel();
  const sink = new EventSink(out, { ...SINK, high_water_bytes: 10_000, low_water_bytes: 1_000 });
  const host = serveRecorder(port2, sink, quiet);
  const link = new RecorderLink(port1, LINK);
  const flips: boolean[] = [];
  link.on('pressure', (on) => flips.push(on));
  const chain = link.openChain('00000000-0000-4000-8000-0000000000bb', GW);
  for (let i = 0; i < 100; i++) chain.frame('s2c', 'D', Buffer.alloc(500, i), 1 + i);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(link.underPressure, true);
  open();
  await link.drain();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(flips, [true, false]);
  assert.equal(out.records.length, 100);
  link.close();
  host.close();
  port1.close();
});

test('a non-retriable log failure on the recorder thread latches failure on the link', async () => {
  const out = new MemoryProducer();
  out.failWith = new LogError('LOG_ERR_BROKEN', 'disk gone', false);
  const p = pair(out);
  const failed = new Promise<Error>((r) => p.recorder.once('failure', r));
  p.recorder.openChain('00000000-0000-4000-8000-0000000000cc', GW).frame('c2s', 'Q', Buffer.from('x'), 1);
  const err = await failed;
  assert.match(err.message, /disk gone/);
  assert.equal((err as { code?: string }).code, 'LOG_ERR_BROKEN');
  assert.ok(p.recorder.failure);
  p.close();
});

test('the recorder thread going away fails the link (fail-closed) and releases waiting drains', async () => {
  const { port1, port2 } = new MessageChannel();
  const link = new RecorderLink(port1, LINK);
  const failed = new Promise<Error>((r) => link.once('failure', r));
  const drained = link.drain(); // never answered: the other end is closed below
  port2.close();
  await drained;
  assert.match((await failed).message, /went away/);
});

test('an event after the chain closed is still sealed in its place; an op for an unknown chain is refused alone', async () => {
  const out = new MemoryProducer();
  const { port1, port2 } = new MessageChannel();
  const sink = new EventSink(out, SINK);
  const host = serveRecorder(port2, sink, quiet);
  const link = new RecorderLink(port1, LINK);
  const a = link.openChain('00000000-0000-4000-8000-0000000000d1', GW);
  const b = link.openChain('00000000-0000-4000-8000-0000000000d2', GW);
  a.frame('c2s', 'Q', Buffer.from('a0'), 1);
  a.close();
  b.frame('c2s', 'Q', Buffer.from('b0'), 2);
  a.event({ type: 'policy.limit', version: 1, rule_id: 'r', limit: 'max_rows', value: 1, observed: 2, time: 3 } as never); // late
  b.frame('s2c', 'Z', Buffer.from('b1'), 4);
  await link.drain();
  const a1 = out.records.filter((r) => r.key.endsWith('d1'));
  assert.deepEqual(a1.map((r) => decode(r.value).seq), [0, 1]);
  assert.equal(verifyChain(a1.map((r) => r.value)).ok, true);
  assert.equal(out.records.filter((r) => r.key.endsWith('d2')).length, 2);
  assert.equal(link.failure, undefined, 'a late event is not a failure');

  // A chain the host never knew (a forged slot): refused on its own, its reply rejected, the
  // batch's other ops recorded, no failure latched.
  const forged = new BatchWriter();
  forged.event(999, { type: 'policy.limit', version: 1 } as never);
  forged.frame(1, 's2c', 'Z', 5, Buffer.from('b2'));
  const batch = forged.take()!;
  port1.postMessage({ op: 'batch', id: 1000, ...batch }, [batch.buffer]);
  await link.drain();
  assert.equal(host.refusedOps, 1);
  assert.equal(out.records.filter((r) => r.key.endsWith('d2')).length, 3);
  assert.equal(link.failure, undefined);
  link.close();
  host.close();
  port1.close();
});

test('after the recorder thread is gone nothing waits on it: drain resolves, sealed events reject, frames are counted as dropped', async () => {
  const { port1, port2 } = new MessageChannel();
  const link = new RecorderLink(port1, LINK);
  const chain = link.openChain('00000000-0000-4000-8000-0000000000e1', GW);
  port2.close();
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(link.failure);
  await link.drain(); // resolves at once
  await assert.rejects(chain.sealedEvent({ type: 'policy.limit', version: 1 } as never), /went away/);
  chain.frame('c2s', 'Q', Buffer.from('x'), 1);
  assert.equal(link.stats.dropped, 2);
});
