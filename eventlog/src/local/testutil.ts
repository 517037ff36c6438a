/** Helpers shared by this folder's tests (temp dirs, bounded waits, collecting consumers). */
import { mkdtemp } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConsumedRecord, LogRecord } from '../types.ts';
import type { LocalEventLog } from './log.ts';

const dirs = new Set<string>();

/**
 * A fresh temporary directory, removed when the test process exits. Not in a `t.after` hook:
 * node:test runs those in the order they were registered, so a removal registered here ran before
 * the close of a log or producer the test opened afterwards, while it still wrote offsets into the
 * directory (ENOTEMPTY, and a producer left running held the file open until its timeout).
 */
export async function tempDir(_t?: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-eventlog-'));
  if (dirs.size === 0) process.once('exit', () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  dirs.add(dir);
  return dir;
}

/** Poll `cond` until true; fail after `timeoutMs` with `what` in the message. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Settle state of a promise without awaiting it (to assert that a send is still blocked). */
export function track(p: Promise<unknown>): { settled: boolean; error?: unknown } {
  const s: { settled: boolean; error?: unknown } = { settled: false };
  p.then(
    () => (s.settled = true),
    (e: unknown) => {
      s.settled = true;
      s.error = e;
    },
  );
  return s;
}

export function rec(key: string, value: string | Buffer, headers?: Record<string, string>): LogRecord {
  return { key, value: Buffer.isBuffer(value) ? value : Buffer.from(value), ...(headers ? { headers } : {}) };
}

/** Consume `topic` with `groupId` until `n` records arrived (or time out); returns them. */
export async function consumeN(log: LocalEventLog, groupId: string, topic: string, n: number, timeoutMs = 5000): Promise<ConsumedRecord[]> {
  const got: ConsumedRecord[] = [];
  const c = log.consumer({ groupId, topics: [topic] });
  await c.run(async (b) => {
    got.push(...b.records);
  });
  try {
    await waitFor(() => got.length >= n, `${n} records on ${topic} (got ${got.length})`, timeoutMs);
  } finally {
    await c.stop();
  }
  return got;
}
