import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LogError } from '../types.ts';
import { LocalEventLog } from './log.ts';
import { consumeN, rec, tempDir, waitFor } from './testutil.ts';

const child = fileURLToPath(new URL('./fixtures/child.ts', import.meta.url));

async function segmentsOf(dir: string, topic: string): Promise<string[]> {
  return (await readdir(join(dir, topic))).filter((f) => f.endsWith('.log')).sort().map((f) => join(dir, topic, f));
}

async function fill(dir: string, n: number, opts: Record<string, unknown> = {}): Promise<void> {
  const log = await LocalEventLog.open({ dir, ...opts });
  await log.ensureTopics(['t']);
  for (let i = 0; i < n; i++) await log.producer().send('t', [rec(`k${i}`, `value-${i}`, { i: String(i) })]);
  await log.close();
}

test('torn tail: half a record and garbage are truncated and counted; earlier records intact; appends continue', async (t) => {
  const dir = await tempDir(t);
  await fill(dir, 5);
  const [seg] = await segmentsOf(dir, 't');
  const intact = (await stat(seg!)).size;
  // Half of a real record (as a crash mid-write leaves it), then random garbage.
  const one = await readFile(seg!);
  const firstLen = 4 + one.readUInt32BE(0);
  await appendFile(seg!, Buffer.concat([one.subarray(0, Math.floor(firstLen / 2)), Buffer.from('garbage!garbage!')]));
  const log = await LocalEventLog.open({ dir });
  t.after(() => log.close());
  assert.equal(log.recovery.droppedBytes, Math.floor(firstLen / 2) + 16);
  assert.equal(log.recovery.topics[0]!.topic, 't');
  assert.equal((await stat(seg!)).size, intact);
  await log.producer().send('t', [rec('k5', 'value-5')]);
  const got = await consumeN(log, 'g', 't', 6);
  assert.deepEqual(got.map((r) => r.value.toString()), [...Array(6).keys()].map((i) => `value-${i}`));
  assert.deepEqual(got.map((r) => r.offset), ['0', '1', '2', '3', '4', '5']);
});

test('torn tail: a CRC-failing last record (bit flip in the final record) is truncated', async (t) => {
  const dir = await tempDir(t);
  await fill(dir, 3);
  const [seg] = await segmentsOf(dir, 't');
  const fh = await open(seg!, 'r+');
  const size = (await fh.stat()).size;
  await fh.write(Buffer.from([0xff]), 0, 1, size - 2); // inside the last record's value
  await fh.close();
  const log = await LocalEventLog.open({ dir });
  t.after(() => log.close());
  assert.ok(log.recovery.droppedBytes > 0);
  assert.equal(log.recovery.topics[0]!.reason, 'CRC mismatch');
  const got = await consumeN(log, 'g', 't', 2);
  assert.deepEqual(got.map((r) => r.value.toString()), ['value-0', 'value-1']);
  await log.producer().send('t', [rec('k', 'after')]);
  const next = await consumeN(log, 'g', 't', 1);
  assert.deepEqual(next.map((r) => [r.offset, r.value.toString()]), [['2', 'after']]);
});

test('CRC corruption in the middle of the last segment refuses to open (no silent truncation of acked data)', async (t) => {
  const dir = await tempDir(t);
  await fill(dir, 5);
  const [seg] = await segmentsOf(dir, 't');
  const buf = await readFile(seg!);
  const firstLen = 4 + buf.readUInt32BE(0);
  const fh = await open(seg!, 'r+');
  await fh.write(Buffer.from([buf[firstLen + 30]! ^ 0x55]), 0, 1, firstLen + 30); // record #1 of 5
  await fh.close();
  await assert.rejects(LocalEventLog.open({ dir }), (e: unknown) => e instanceof LogError && e.code === 'LOG_ERR_CORRUPT');
  assert.equal((await stat(seg!)).size, buf.length, 'file not truncated');
  // The failed open released its lock.
  const again = LocalEventLog.open({ dir });
  await assert.rejects(again, (e: unknown) => e instanceof LogError && e.code === 'LOG_ERR_CORRUPT');
});

test('CRC corruption in an earlier segment is detected while reading: delivery stops before it, error reported', async (t) => {
  const dir = await tempDir(t);
  await fill(dir, 40, { segment_bytes: 1024, max_bytes: 1 << 20, max_record_bytes: 512 });
  const segs = await segmentsOf(dir, 't');
  assert.ok(segs.length >= 3);
  const buf = await readFile(segs[0]!);
  const firstLen = 4 + buf.readUInt32BE(0);
  const fh = await open(segs[0]!, 'r+');
  await fh.write(Buffer.from([buf[firstLen + firstLen - 1]! ^ 0x01]), 0, 1, firstLen + firstLen - 1); // record #1
  await fh.close();
  const log = await LocalEventLog.open({ dir, segment_bytes: 1024, max_bytes: 1 << 20, max_record_bytes: 512 });
  t.after(() => log.close());
  assert.equal(log.recovery.droppedBytes, 0);
  const got: string[] = [];
  let error: LogError | undefined;
  const c = log.consumer({ groupId: 'g', topics: ['t'], onError: (e) => (error = e) });
  await c.run(async (b) => void got.push(...b.records.map((r) => r.value.toString())));
  await waitFor(() => error !== undefined, 'the corruption error');
  await c.stop();
  assert.equal(error!.code, 'LOG_ERR_CORRUPT');
  assert.match(error!.message, /CRC mismatch/);
  assert.deepEqual(got, ['value-0'], 'nothing after the damaged record is delivered');
});

function runChild(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

test('commit only after ack: a crash between handler and commit redelivers the batch after reopen', async (t) => {
  const dir = await tempDir(t);
  await fill(dir, 3);
  // The child consumes, and its handler SIGKILLs the process after processing the batch (before
  // the consumer can commit). Its stale LOCK must not block us afterwards.
  const r = await runChild(['crash-in-handler', dir]);
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  assert.match(r.stdout, /handled 3/);
  const log = await LocalEventLog.open({ dir });
  t.after(() => log.close());
  const got = await consumeN(log, 'g', 't', 3);
  assert.deepEqual(got.map((x) => x.offset), ['0', '1', '2']);
});

test('lock: a second writer (same process or another process) gets LOG_ERR_LOCKED', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir });
  await assert.rejects(LocalEventLog.open({ dir }), (e: unknown) => e instanceof LogError && e.code === 'LOG_ERR_LOCKED');
  const r = await runChild(['try-open', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /LOG_ERR_LOCKED/);
  await log.close();
  // Released on close: another process can now take it.
  const r2 = await runChild(['try-open', dir]);
  assert.match(r2.stdout, /opened/);
  const log2 = await LocalEventLog.open({ dir });
  await log2.close();
});

test('read-only view follows a log written by another process (polling fallback)', async (t) => {
  const dir = await tempDir(t);
  await fill(dir, 2);
  const ro = await LocalEventLog.open({ dir, read_only: true, poll_interval_ms: 50 });
  t.after(() => ro.close());
  assert.throws(() => ro.producer(), (e: unknown) => e instanceof LogError && e.code === 'LOG_ERR_READ_ONLY');
  const got: string[] = [];
  const c = ro.consumer({ groupId: 'ro', topics: ['t'] });
  await c.run(async (b) => void got.push(...b.records.map((r) => r.value.toString())));
  await waitFor(() => got.length === 2, 'existing records');
  const r = await runChild(['append', dir, 'from-child']);
  assert.equal(r.code, 0, r.stderr);
  await waitFor(() => got.length === 3, 'the other process\'s record');
  await c.stop();
  assert.equal(got[2], 'from-child');
});
