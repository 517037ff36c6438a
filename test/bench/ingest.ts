/**
 * `npm run bench:ingest`: ingest throughput end to end — local log on disk → decode → mask (a policy
 * with column rules and value detectors) → detect → ClickHouse (chDB) — next to the raw ClickHouse
 * insert rate of the same rows (every insert ingest made, replayed into emptied tables), in one run.
 *
 * BENCH_SESSIONS (default 40) × BENCH_STATEMENTS (default 1000) statements; each statement pair is
 * 15 frames (simple + extended protocol with their responses).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { benchDecode, benchIngest } from '@vigil/ingest/bench';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 40);
const STATEMENTS = Number(process.env.BENCH_STATEMENTS ?? 1000);

const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-ingest-'));
const policy = join(dir, 'policy.yaml');
writeFileSync(policy, `version: 1
rules:
  - id: mask-names
    mask: { columns: [public.users.name], strategy: redact }
  - id: mask-secrets
    mask: { detectors: [card, email, api_key], strategy: redact }
`);
const store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
try {
  await applyDdl(store);
  const decode = benchDecode({ statements: 200_000 });
  const r = await benchIngest({ store, log_dir: join(dir, 'log'), policy_file: policy, sessions: SESSIONS, statements_per_session: STATEMENTS });
  const f = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`corpus: ${SESSIONS} sessions × ${STATEMENTS} statements = ${f(r.events)} log records, ${f(r.queries)} statements, ${r.alerts} alerts`);
  console.log(`rows written: ${f(r.raw.rows)} in ${r.raw.inserts} inserts (${Object.entries(r.rows_by_table).map(([t, n]) => `${t} ${f(n)}`).join(', ')})`);
  console.log('| path | time | events/s |');
  console.log('|---|---|---|');
  console.log(`| ingest end to end (log → decode → mask → detect → ClickHouse, offsets committed) | ${(r.pipeline.elapsed_ms / 1000).toFixed(2)} s | ${f(r.pipeline.events_per_s)} |`);
  console.log(`| raw ClickHouse inserts of the same rows | ${(r.raw.elapsed_ms / 1000).toFixed(2)} s | ${f(r.raw.events_per_s)} |`);
  console.log(`| decode transform alone (no I/O) | ${(decode.elapsed_ms / 1000).toFixed(2)} s | ${f(decode.events_per_s)} |`);
  console.log(`ratio ingest / raw insert: ${(r.pipeline.events_per_s / r.raw.events_per_s).toFixed(2)}`);
} finally {
  await releaseStore(store);
  rmSync(dir, { recursive: true, force: true });
}
