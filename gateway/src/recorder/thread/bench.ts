/**
 * `npm run bench:recorder` — what the log thread spends per recorded frame, in three layers, on
 * the `-S` message mix (Query, RowDescription, DataRow, CommandComplete, ReadyForQuery; 4 sessions):
 *   seal                 SessionChain.frame (the native sealer when built: canonical header, event id,
 *                        SHA-256 in one call)
 *   seal (JS fallback)   the same with the JS sealer (what runs where the native one is not built)
 *   seal + sink + log    sealed in place into an EventSink's record run (appendFrame) and appended
 *                        to a real LocalEventLog (group-commit fsync)
 *   host (log thread)    … from batches as the socket thread writes them (80 frames per batch,
 *                        posted over a MessageChannel one at a time): the whole log-thread path,
 *                        where runs of frames are sealed by one native call (sealFrames)
 * Interleaved rounds, median µs per frame. Usage: npm run bench:recorder [frames per round]
 */
import { MessageChannel } from 'node:worker_threads';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SessionChain } from '@vigil/schemas';
import { nativeSealer } from '@vigil/schemas/native';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { parseLocalEventLogConfig } from '@vigil/eventlog/local/config';
import { EventSink } from '../sink.ts';
import { BatchWriter, type WireBatch } from './wire.ts';
import { serveRecorder } from './host.ts';

const N = Number(process.argv[2] ?? 100_000);
const ROUNDS = 5;
const TOPIC = 'vigil.frames.v1';
const GW = { gateway_id: 'gw-bench', gateway_version: '0.1.0' };
const SESSIONS = [0, 1, 2, 3].map((i) => `00000000-0000-4000-8000-00000000000${i}`);
const MSGS = [
  Buffer.from('Q\0\0\0\x3aSELECT abalance FROM pgbench_accounts WHERE aid = 12345;\0'),
  Buffer.from('T\0\0\0\x21\0\x01abalance\0\0\0@\x04\0\x03\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0'),
  Buffer.from('D\0\0\0\x0b\0\x01\0\0\0\x01\x30'),
  Buffer.from('C\0\0\0\x0dSELECT 1\0'),
  Buffer.from('Z\0\0\0\x05I'),
];
const TYPES = ['Q', 'T', 'D', 'C', 'Z'];
const dir = (i: number): 'c2s' | 's2c' => (i % 5 === 0 ? 'c2s' : 's2c');

async function withLog<T>(fn: (sink: EventSink) => Promise<T>): Promise<T> {
  const path = mkdtempSync(join(tmpdir(), 'vigil-bench-recorder-'));
  const log = await LocalEventLog.open(parseLocalEventLogConfig({ dir: path }));
  await log.ensureTopics([TOPIC]);
  try {
    return await fn(new EventSink(log.producer(), { topic: TOPIC, high_water_bytes: 1 << 30, low_water_bytes: 1 << 29, retry_backoff_ms: 10 }));
  } finally {
    await log.close();
    rmSync(path, { recursive: true, force: true });
  }
}

function seal(sealer?: 'js'): number {
  const chains = SESSIONS.map((s) => new SessionChain(s, GW, { sealer }));
  const t = performance.now();
  for (let i = 0; i < N; i++) chains[i & 3]!.frame(dir(i), TYPES[i % 5], MSGS[i % 5]!, 1_795_000_000_000_000 + i);
  return ((performance.now() - t) * 1000) / N;
}

function sealAndLog(): Promise<number> {
  return withLog(async (sink) => {
    const chains = SESSIONS.map((s) => new SessionChain(s, GW));
    const keys = SESSIONS.map((s) => Buffer.from(s));
    const t = performance.now();
    for (let i = 0; i < N; i++) {
      sink.appendFrame(SESSIONS[i & 3]!, keys[i & 3]!, chains[i & 3]!, dir(i), TYPES[i % 5], MSGS[i % 5]!, 1_795_000_000_000_000 + i);
      if (i % 80 === 79) await new Promise((r) => setImmediate(r)); // a loop turn per batch, as on the log thread
    }
    await sink.drain();
    return ((performance.now() - t) * 1000) / N;
  });
}

function host(): Promise<number> {
  return withLog(async (sink) => {
    const w = new BatchWriter();
    SESSIONS.forEach((s, i) => w.open(i, s, GW));
    const batches: WireBatch[] = [];
    for (let i = 0; i < N; i++) {
      w.frame(i & 3, dir(i), TYPES[i % 5], 1_795_000_000_000_000 + i, MSGS[i % 5]!);
      if (i % 80 === 79 || i === N - 1) batches.push(w.take()!);
    }
    const { port1, port2 } = new MessageChannel();
    const served = serveRecorder(port2, sink, { error() {} });
    const t = performance.now();
    let next = 0;
    let processed = 0;
    await new Promise<void>((resolve) => {
      const post = () => {
        const b = batches[next++];
        if (b) port1.postMessage({ op: 'batch', id: next, ...b }, [b.buffer]);
      };
      port1.on('message', (m: { op: string }) => {
        if (m.op !== 'processed') return;
        if (++processed === batches.length) resolve();
        else post();
      });
      post();
      post(); // one batch queued behind the one being processed, as under load
    });
    await sink.drain();
    const us = ((performance.now() - t) * 1000) / N;
    served.close();
    port1.close();
    return us;
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results = { seal: [] as number[], js: [] as number[], log: [] as number[], host: [] as number[] };
if (!nativeSealer.addon) console.log(`(the native sealer is not in use: ${nativeSealer.reason}; both seal rows are the JS sealer)`);
for (let r = 0; r < ROUNDS; r++) {
  results.seal.push(seal());
  results.js.push(seal('js'));
  results.log.push(await sealAndLog());
  results.host.push(await host());
}
console.log(`recorder, µs per frame (${N} frames × ${ROUNDS} interleaved rounds, median):`);
console.log(`  seal                  ${median(results.seal).toFixed(2)}`);
console.log(`  seal (JS fallback)    ${median(results.js).toFixed(2)}`);
console.log(`  seal + sink + log     ${median(results.log).toFixed(2)}`);
console.log(`  host (log thread)     ${median(results.host).toFixed(2)}`);
