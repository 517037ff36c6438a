/**
 * `npm run bench:replay`: API latency of the replay UI's calls over a store holding 1M statements
 * (`queries`) and 1M events, in chDB (the embedded store), through a listening API over HTTP.
 *
 * Seeded in SQL (INSERT … SELECT FROM numbers()), not through ingest: this measures reads.
 * 10,000 sessions × 100 statements; statement texts vary (table, id), 1% of statements blocked.
 * Each case: 3 warm-up calls, then BENCH_RUNS (default 20) timed calls; median and p95 reported,
 * plus each search's ratio to the plain unfiltered list measured in the same run.
 *
 * Terminal replay (terminal-replay.ts): time to first frame and to seek to the end of a 100 MB
 * terminal recording (BENCH_TERMINAL_MB; 0 skips it), folded by ingest's terminal transform.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, applyDdl, releaseStore } from '@vigil/ingest/store/client';
import { openDevIssuer } from '@vigil/identity/dev-issuer';
import { createVerifier } from '@vigil/identity/verifier';
import { buildApi } from '@vigil/replay-ui/app';
import { measureTerminal, seedTerminal } from './terminal-replay.ts';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 10_000);
const PER_SESSION = 100;
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const ISSUER = 'http://127.0.0.1:1';
const TERMINAL_MB = Number(process.env.BENCH_TERMINAL_MB ?? 100);

const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-replay-'));
const store = await openStore({ kind: 'chdb', path: join(dir, 'chdb') });
try {
  await applyDdl(store);
  const n = SESSIONS * PER_SESSION;
  const t0 = performance.now();
  const T0 = '1767268800000000'; // 2026-01-01T12:00:00Z in µs
  await store.command({
    query: `INSERT INTO sessions SELECT
        concat('s', toString(number)) AS session_id, 1, fromUnixTimestamp64Micro(${T0} + number * 60000000, 'UTC'),
        if(number % 50 = 0, NULL, fromUnixTimestamp64Micro(${T0} + number * 60000000 + 30000000, 'UTC')),
        concat('user', toString(number % 200)), ['dba'], '${ISSUER}', if(number % 3 = 0, 'agent', 'human'), '127.0.0.1:5000', 'psql',
        concat('pg-', toString(number % 20)), 'postgres', '127.0.0.1:5432', 'app', 'postgres', 'gw-1', false, false,
        if(number % 50 = 0, '', 'client_closed'), '', 30000000, 1000, 100000, 100, 1000, 'h'
      FROM numbers(${SESSIONS})`,
  });
  await store.command({
    // Columns named: later DDL (002_queries_preview.sql) adds columns this seed leaves at their defaults.
    query: `INSERT INTO queries (session_id, seq, end_seq, event_id, time, duration_us, sub, target_id, protocol_kind, statement,
        statement_name, params, command_tag, rows, bytes, sqlstate, error, statement_known) SELECT
        concat('s', toString(intDiv(number, ${PER_SESSION}))) AS session_id, (number % ${PER_SESSION}) * 10 AS seq, seq + 9,
        concat('e', toString(number)), fromUnixTimestamp64Micro(${T0} + intDiv(number, ${PER_SESSION}) * 60000000 + (number % ${PER_SESSION}) * 100000, 'UTC'),
        500, concat('user', toString(intDiv(number, ${PER_SESSION}) % 200)), concat('pg-', toString(intDiv(number, ${PER_SESSION}) % 20)), 'simple',
        multiIf(number % 100 = 7, concat('DELETE FROM orders_', toString(number % 997), ' WHERE id = ', toString(number)),
                number % 10 = 1, concat('UPDATE accounts SET balance = balance - 1 WHERE account_id = ', toString(number)),
                concat('SELECT id, name, email FROM customers_', toString(number % 5000), ' WHERE id = ', toString(number), ' ORDER BY id LIMIT 100')),
        '', [], 'SELECT 1', 1, 100, '', '', 1
      FROM numbers(${n})`,
  });
  await store.command({
    query: `INSERT INTO events SELECT
        concat('s', toString(intDiv(number, ${PER_SESSION}))), (number % ${PER_SESSION}) * 10 + 1, concat('b', toString(number)),
        if(number % 100 = 7, 'policy.blocked', 'frame'),
        fromUnixTimestamp64Micro(${T0} + intDiv(number, ${PER_SESSION}) * 60000000 + (number % ${PER_SESSION}) * 100000, 'UTC'),
        concat('user', toString(intDiv(number, ${PER_SESSION}) % 200)), concat('pg-', toString(intDiv(number, ${PER_SESSION}) % 20)), 'c2s', 'Q', 100, '', '',
        if(number % 100 = 7, '{"rule_id":"no-delete","action":"block","message":"blocked by policy rule \\\\"no-delete\\\\""}', '')
      FROM numbers(${n})`,
  });
  const seedMs = performance.now() - t0;
  const term = TERMINAL_MB > 0 ? await seedTerminal(store, TERMINAL_MB) : null;
  const counts = await (await store.query({ query: 'SELECT (SELECT count() FROM queries) AS q, (SELECT count() FROM events) AS e, (SELECT count() FROM sessions) AS s', format: 'JSONEachRow' })).json<{ q: string; e: string; s: string }>();

  const issuer = await openDevIssuer({ dir: join(dir, 'issuer'), issuer: ISSUER });
  const token = await issuer.mint({ sub: 'bench', roles: ['analyst'], ttl_s: 3600, audience: 'vigil' });
  const app = await buildApi({ config: { listen_port: 0 }, verifier: createVerifier({ issuer: ISSUER, jwks_file: issuer.jwks_file }), store });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });

  const time = async (path: string) => {
    const t = performance.now();
    const res = await fetch(`${address}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { items?: unknown[]; queries?: unknown[]; series?: unknown[] };
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - t, n: body.items?.length ?? body.queries?.length ?? body.series?.length ?? 0 };
  };
  const cases: [string, string][] = [
    ['list, no filter (baseline)', '/api/sessions?limit=50'],
    ['search, rare text (1 table of 5000)', '/api/sessions?q=customers_4242%20&limit=50'],
    ['search, one statement (unique id)', '/api/sessions?q=WHERE%20id%20%3D%20777707&limit=50'],
    ['search, common text (every session)', '/api/sessions?q=select%20id&limit=50'],
    ['search + identity + agent filters', '/api/sessions?q=delete%20from&sub=user7&actor_kind=human&limit=50'],
    ['search + time range', '/api/sessions?q=orders_13%20&from=2026-01-03T00:00:00Z&to=2026-01-05T00:00:00Z&limit=50'],
    ['session detail, 100 statements + verdicts', `/api/sessions/s${Math.floor(SESSIONS / 2) + 1}?queries_limit=200`],
    ['activity, 7 days × 56 buckets', '/api/activity?from=2026-01-01T00:00:00Z&to=2026-01-08T00:00:00Z&buckets=56'],
  ];
  const results: { name: string; median: number; p95: number; n: number }[] = [];
  for (const [name, path] of cases) {
    for (let i = 0; i < 3; i++) await time(path);
    const ms: number[] = [];
    let rows = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = await time(path);
      ms.push(r.ms);
      rows = r.n;
    }
    ms.sort((a, b) => a - b);
    results.push({ name, median: ms[Math.floor(ms.length / 2)], p95: ms[Math.min(ms.length - 1, Math.ceil(ms.length * 0.95) - 1)], n: rows });
  }
  const terminal = term ? await measureTerminal(address, token, RUNS) : [];
  await app.close();
  const base = results[0].median;
  console.log(`# store: ${counts[0].s} sessions, ${counts[0].q} statements, ${counts[0].e} events (seeded in ${(seedMs / 1000).toFixed(1)} s); ${RUNS} timed runs per case`);
  console.log('| case | median ms | p95 ms | rows returned | ÷ baseline |');
  console.log('|---|---|---|---|---|');
  for (const r of results) console.log(`| ${r.name} | ${r.median.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.n} | ${(r.median / base).toFixed(2)} |`);
  const worstSearch = Math.max(...results.filter((r) => r.name.startsWith('search')).map((r) => r.p95));
  console.log(`# goal: search ≤ 300 ms over 1M stored events — worst search p95 ${worstSearch.toFixed(1)} ms: ${worstSearch <= 300 ? 'met' : 'NOT met'}`);
  if (term) {
    console.log(`\n# terminal recording: ${(term.bytes / 1048576).toFixed(0)} MiB of output in ${term.rows} frames, ${term.snapshots} snapshots (folded and stored in ${term.seconds.toFixed(1)} s)`);
    console.log('| case | median ms | p95 ms |');
    console.log('|---|---|---|');
    const pct = (ms: number[], p: number) => ms[Math.min(ms.length - 1, Math.ceil(ms.length * p) - 1)]!;
    for (const r of terminal) console.log(`| ${r.name} | ${pct(r.ms, 0.5).toFixed(1)} | ${pct(r.ms, 0.95).toFixed(1)} |`);
    const first = pct(terminal[0]!.ms, 0.95);
    const end = pct(terminal[1]!.ms, 0.95);
    console.log(`# goal: first frame ≤ 500 ms — p95 ${first.toFixed(1)} ms: ${first <= 500 ? 'met' : 'NOT met'}; seek to the end ≤ 1000 ms — p95 ${end.toFixed(1)} ms: ${end <= 1000 ? 'met' : 'NOT met'}`);
  }
} finally {
  await releaseStore(store);
  rmSync(dir, { recursive: true, force: true });
}
