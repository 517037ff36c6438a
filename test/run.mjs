#!/usr/bin/env node
/**
 * The whole suite: every `*.test.ts` in the workspaces, run by node:test under tsx, one process per
 * file (chDB binds one data path per process). Real components are brought up first so that a test
 * needing one fails loudly if it cannot start, instead of skipping:
 *   - the Kafka broker (deploy/local/kafka/kafka.sh start; stopped afterwards if we started it)
 * PostgreSQL and MariaDB are expected running (.ci/run starts them when they are down).
 *
 * Usage: node test/run.mjs [path-substring …]   e.g. `node test/run.mjs gateway/` to run a subset.
 * Env: VIGIL_TEST_CONCURRENCY (default 2), VIGIL_TEST_TIMEOUT_MS per file (default 600000),
 *      VIGIL_TEST_KAFKA_BROKERS to use an existing broker instead of starting one.
 */
import { spawnSync, spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const SKIP_DIRS = new Set(['node_modules', '.git', 'data', '.cache', 'dist', '.tmp']);

function findTests(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) findTests(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

const files = findTests(root)
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

// Bring up the Kafka broker once for every suite that needs it (kafka.sh start is idempotent).
let startedKafka = false;
const needsKafka = files.some((f) => /kafka|distributed/.test(f));
if (needsKafka && !process.env.VIGIL_TEST_KAFKA_BROKERS) {
  const status = spawnSync('bash', ['deploy/local/kafka/kafka.sh', 'status'], { cwd: root, stdio: 'ignore' });
  console.log('# starting the Kafka broker (deploy/local/kafka/kafka.sh start)');
  const r = spawnSync('bash', ['deploy/local/kafka/kafka.sh', 'start'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('# the Kafka broker did not start: the Kafka suites would fail; stopping here');
    process.exit(1);
  }
  startedKafka = status.status !== 0;
  process.env.VIGIL_TEST_KAFKA_BROKERS = `127.0.0.1:${process.env.VIGIL_KAFKA_PORT ?? 19092}`;
}

const args = [
  '--import', 'tsx',
  '--test',
  `--test-concurrency=${process.env.VIGIL_TEST_CONCURRENCY ?? 2}`,
  `--test-timeout=${process.env.VIGIL_TEST_TIMEOUT_MS ?? 600000}`,
  ...files,
];
console.log(`# ${files.length} test files`);
const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit', env: process.env });
const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
if (startedKafka) spawnSync('bash', ['deploy/local/kafka/kafka.sh', 'stop'], { cwd: root, stdio: 'inherit' });
process.exit(code);
