/**
 * Throughput of the local log's hot path, gateway-shaped: S concurrent sessions, each sending one
 * small record (a frame) per send(), with at most W sends of its own in flight (W=1: every frame
 * awaits durability before the next, the worst case for group commit; W=32: a pipelining gateway,
 * which the per-key ordering of send() allows). Prints records/s per fsync policy side by side.
 *
 *   node --import tsx eventlog/src/local/bench.ts [records=200000] [sessions=256] [value_bytes=200]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalEventLog } from './log.ts';

const [total = 200_000, sessions = 256, valueBytes = 200] = process.argv.slice(2).map(Number);
const value = Buffer.alloc(valueBytes, 0x61);

async function run(fsync: 'group' | 'always' | 'never', window: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-bench-'));
  const log = await LocalEventLog.open({ dir, fsync });
  try {
    await log.ensureTopics(['frames']);
    const p = log.producer();
    const perSession = Math.ceil(total / sessions);
    const t0 = process.hrtime.bigint();
    await Promise.all(
      [...Array(sessions).keys()].map(async (s) => {
        const key = `session-${s}`;
        const headers = { type: 'frame' };
        const inflight = new Set<Promise<void>>();
        for (let i = 0; i < perSession; i++) {
          const sp = p.send('frames', [{ key, value, headers }]).then(() => void inflight.delete(sp));
          inflight.add(sp);
          if (inflight.size >= window) await Promise.race(inflight);
        }
        await Promise.all(inflight);
      }),
    );
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const n = perSession * sessions;
    const st = log.writerStats;
    const mb = log.usage().usedBytes / 1024 / 1024;
    console.log(
      `W=${String(window).padEnd(2)} fsync=${fsync.padEnd(6)} ${n} records in ${secs.toFixed(2)} s = ${Math.round(n / secs).toLocaleString('en')} rec/s, ` +
        `${(mb / secs).toFixed(1)} MiB/s on disk; ${st.flushes} group commits, ${st.writes} write(), ${st.fsyncs} fsync ` +
        `(${(n / Math.max(1, st.flushes)).toFixed(0)} rec/commit)`,
    );
  } finally {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(`node ${process.version}, ${sessions} sessions, ${valueBytes}-byte values, tmpdir ${tmpdir()}`);
for (const window of [1, 32]) for (const mode of ['never', 'group', 'always'] as const) await run(mode, window);
