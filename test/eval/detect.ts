/**
 * `npm run eval:detect`: generate the corpus and score each detector (precision, recall,
 * time-to-alert, false alerts as a share of benign sessions; score.ts) twice:
 *  1. at scale: every session's frames and events written to the log, the real ingest pipeline
 *     (log → decode → detect → chDB) in this process; simulated time.
 *  2. a sample of the same corpus through the real gateway (gateway-sample.ts): PostgreSQL client
 *     traffic through `vigil start`, alerts read back via GET /api/alerts; real time.
 * Exits 1 when either misses recall ≥ 0.9 or false alerts ≤ 2%. EVAL_GATEWAY=0 skips the sample.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topics } from '@vigil/eventlog/types';
import { applyDdl, openStore, releaseStore } from '@vigil/ingest/store/client';
import { startIngest } from '@vigil/ingest';
import { MemoryEventLog } from '../../ingest/src/testing/memory-log.ts';
import { generate } from './scenarios.ts';
import { formatScore, score, type Score } from './score.ts';
import { runGatewaySample } from './gateway-sample.ts';

const identities = Number(process.env.EVAL_IDENTITIES ?? 40);
const weeks = Number(process.env.EVAL_WEEKS ?? 3);
const corpus = generate({ identities, weeks, seed: Number(process.env.EVAL_SEED ?? 42) });
const met = (s: Score) => s.worstRecall >= 0.9 && s.falseShare <= 0.02;
const goal = (s: Score) =>
  `goal: recall ≥ 0.90 (worst ${s.worstRecall.toFixed(2)}), false alerts ≤ 2% (${(s.falseShare * 100).toFixed(2)}%): ${met(s) ? 'met' : 'NOT met'}`;

// 1. At scale, through the log.
const dir = mkdtempSync(join(tmpdir(), 'vigil-eval-'));
const store = await openStore({ kind: 'chdb', path: dir });
await applyDdl(store);
const log = new MemoryEventLog();
await log.ensureTopics([Topics.frames]);
let total = 0;
for (const s of corpus.sessions) {
  log.append(Topics.frames, s.records);
  total += s.records.length;
}
const detect = {
  off_hours: { schedule: { timezone: 'UTC', from: '07:00', to: '19:00' } },
};
const t0 = performance.now();
const ingest = await startIngest({ config: { ingest: { group_id: 'eval', max_batch_rows: 5000, detect } } as never, log, store });
while (log.committedOffset('eval', Topics.frames) < total) await new Promise((r) => setTimeout(r, 20));
const elapsed = (performance.now() - t0) / 1000;
await ingest.stop();
const alerts = await (await store.query({ query: 'SELECT rule, session_id, toUnixTimestamp64Micro(time) AS t FROM alerts FINAL', format: 'JSONEachRow' })).json<{ rule: string; session_id: string; t: string }>();
await releaseStore(store);
rmSync(dir, { recursive: true, force: true });
const atScale = score(corpus.sessions, alerts.map((a) => ({ ...a, t: Number(a.t) })));
console.log(`## at scale: frames written to the log (simulated time)`);
console.log(`corpus: ${corpus.identities} identities, ${corpus.days} simulated days, ${corpus.sessions.length} sessions (${atScale.benign} benign, ${corpus.sessions.filter((s) => s.attack).length} injected), ${total} log records`);
console.log(`ingest: ${elapsed.toFixed(1)} s, ${(total / elapsed).toFixed(0)} records/s through log → decode → detect → chDB`);
for (const l of formatScore(atScale, { ttaLabel: 'simulated' })) console.log(l);
console.log(goal(atScale));

// 2. A sample of the same corpus through the real gateway.
let sampleMet = true;
if (process.env.EVAL_GATEWAY !== '0') {
  const r = await runGatewaySample({ corpus });
  const ids = new Set(r.sessions.map((s) => s.who.sub));
  console.log('');
  console.log('## gateway sample: PostgreSQL client traffic through vigil start (real time)');
  console.log(`sample: ${ids.size} identities, ${r.sessions.length} sessions (${r.sessions.filter((s) => s.role === 'history').length} history, ${r.sessions.filter((s) => s.role === 'twin').length} benign twins, ${r.sessions.filter((s) => s.role === 'injected').length} injected), ${r.statements} statements; ${r.wall_s.toFixed(1)} s from vigil start to the last alert read`);
  for (const l of formatScore(r.score, { ttaLabel: 'event time', digits: 2, visible: true })) console.log(l);
  const twinsQuiet = r.sessions.filter((s) => s.role === 'twin').every((s) => !r.alerts.some((a) => a.session_id === s.session_id));
  console.log(`benign twins quiet: ${twinsQuiet ? 'all' : 'NOT all'}`);
  console.log(goal(r.score));
  sampleMet = met(r.score) && twinsQuiet;
}
process.exit(met(atScale) && sampleMet ? 0 : 1);
