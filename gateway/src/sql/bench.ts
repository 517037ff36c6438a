/**
 * Micro-benchmark of statement analysis (not a test): µs per analysis for a cached and an uncached
 * statement, measured side by side in one run. Run: node --import tsx gateway/src/sql/bench.ts
 */
import { initSqlParser, analyse, createSqlAnalyser } from './analyse.ts';

const STATEMENTS: Record<string, string> = {
  'point select': 'SELECT id, email, name FROM public.users WHERE id = $1',
  'join + CTE + subquery':
    'WITH recent AS (SELECT user_id, max(created_at) AS last FROM orders WHERE created_at > now() - interval \'7 days\' GROUP BY user_id) ' +
    'SELECT u.id, u.email, r.last, (SELECT count(*) FROM payments p WHERE p.user_id = u.id) AS n FROM users u JOIN recent r ON r.user_id = u.id ' +
    'WHERE u.active AND lower(u.email) LIKE $1 ORDER BY r.last DESC LIMIT 50',
  'update': 'UPDATE accounts SET balance = balance - $1, updated_at = now() WHERE id = $2 AND balance >= $1',
};

function timeUs(iterations: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(iterations, 1000); i++) fn(i); // warm up the JIT
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  return Number(process.hrtime.bigint() - start) / 1000 / iterations;
}

await initSqlParser();
const analyser = createSqlAnalyser();
console.log('statement                 uncached µs   cached µs   ratio');
for (const [name, sql] of Object.entries(STATEMENTS)) {
  const uncached = timeUs(5000, () => analyse(sql));
  analyser.analyse(sql);
  const cached = timeUs(200_000, () => analyser.analyse(sql));
  console.log(`${name.padEnd(25)} ${uncached.toFixed(1).padStart(12)} ${cached.toFixed(3).padStart(11)} ${(uncached / cached).toFixed(0).padStart(7)}×`);
}
// Distinct texts through the cached analyser: every call is a miss (the cost of a stream of new statements).
const missUs = timeUs(2000, (i) => analyser.analyse(`SELECT * FROM t WHERE id = ${i} AND x = 'miss-${Math.random()}'`));
console.log(`${'cache miss (new text)'.padEnd(25)} ${missUs.toFixed(1).padStart(12)}`);
// One big bulk INSERT: what a single large statement costs the event loop (parsing is synchronous).
const bulk = 'INSERT INTO t (a, b, c) VALUES ' + Array.from({ length: 20_000 }, (_, i) => `(${i}, 'name-${i}', now())`).join(', ');
const bulkMs = timeUs(3, () => analyse(bulk, { max_statement_bytes: 4 * 1024 * 1024 })) / 1000;
console.log(`bulk INSERT of ${(Buffer.byteLength(bulk) / 1024).toFixed(0)} KiB: ${bulkMs.toFixed(1)} ms per analysis`);
console.log('cache', JSON.stringify(analyser.stats()));
