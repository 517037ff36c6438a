/**
 * `npm run bench:pg` — pgbench through three paths, side by side in one run:
 *   direct     pgbench → PostgreSQL 127.0.0.1:5432
 *   pgbouncer  pgbench → pgbouncer (Debian, transaction pooling) → PostgreSQL
 *   vigil      pgbench → Vigil gateway (`vigil start`, embedded: every frame recorded to the local log,
 *              ingest into chDB and the API in the same process) → PostgreSQL. After each run the
 *              bench waits until ingest has landed every session of the run (the API lists them all
 *              ended) and reports that catch-up time: ingest runs at SCHED_IDLE and may lag in a run.
 *   vigil-gw   the same gateway alone (`vigil gateway`, local log, recording on, no ingest or API in
 *              the process): what the data path with recording costs by itself
 *   vigil+policy  the same with test/bench/policy.yaml (20 rules, 5 masked columns): every statement
 *              analysed by the PostgreSQL parser and evaluated, and the masked columns rewritten in
 *              every result row
 *   node-relay pgbench → a bare Node.js TCP relay (test/bench/node-relay.ts: pipe, nothing parsed or
 *              recorded) → PostgreSQL: the ceiling of a Node data path on this machine
 * Beside throughput, each proxy's CPU time per transaction over the same runs (test/bench/cpu.ts):
 * pgbouncer and the relay as a whole, Vigil split by thread (socket, log, ingest, other).
 * Workloads: `-S` (select-only) and the default TPC-B-like script. Each (workload, path) pair runs
 * BENCH_ROUNDS times interleaved (direct, pgbouncer, vigil, direct, …) so machine noise hits all
 * paths alike; the median TPS is reported with the ratios vigil/pgbouncer and vigil/direct.
 *
 * Each path runs alone: during its pgbench run every other proxy process is stopped (SIGSTOP, then
 * SIGCONT), because idle is not silent — an embedded ClickHouse engine keeps background threads
 * busy (asynchronous metrics, merges after a landing, system-log flushes), ingest polls its log,
 * and that load would fall on whichever path ran next (BENCH_ISOLATE=0 runs them all side by side).
 * A Vigil process's own background work still runs during its own runs and is counted in them.
 * Env: BENCH_SECONDS (default 10), BENCH_CLIENTS (4), BENCH_ROUNDS (3), BENCH_SCALE (10), BENCH_ISOLATE (1),
 *      BENCH_PATHS (comma-separated subset of direct,pgbouncer,vigil,vigil+policy,vigil-gw,node-relay; default all),
 *      BENCH_WORKLOADS (S,tpcb; default both), e.g. BENCH_PATHS=pgbouncer,vigil BENCH_WORKLOADS=S for a quick -S ratio.
 * Needs pgbench and pgbouncer (Debian packages postgresql-client / pgbouncer; .ci/run installs them).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startVigil, freePort } from '../support/vigil-process.ts';
import { cpuSeconds, perTransactionUs, sampleCpu, type CpuRoles } from './cpu.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SCALE = Number(process.env.BENCH_SCALE ?? 10);
const ISOLATE = process.env.BENCH_ISOLATE !== '0';
const DB = 'vigil_bench';

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

interface Result {
  tps: number;
  latency_ms: number;
  /** The proxy's CPU µs per transaction by role (absent for direct). */
  cpu?: CpuRoles;
}

/** The process whose CPU a path's runs are charged to; `split` = a Vigil process (by thread). */
interface Proxy {
  pid: number;
  split: boolean;
}

function pgbench(conn: { host: string; port: number; user: string; db: string; password?: string }, selectOnly: boolean, proxy?: Proxy): Promise<Result> {
  const args = ['-h', conn.host, '-p', String(conn.port), '-U', conn.user, '-c', String(CLIENTS), '-j', String(Math.min(CLIENTS, 2)), '-T', String(SECONDS), '-n'];
  if (selectOnly) args.push('-S');
  args.push(conn.db);
  return new Promise((resolve, reject) => {
    const before = proxy && sampleCpu(proxy.pid);
    const child = spawn('pgbench', args, { env: { ...process.env, PGPASSWORD: conn.password ?? '' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      const tps = /tps = ([\d.]+)/.exec(out);
      const lat = /latency average = ([\d.]+) ms/.exec(out);
      const done = /number of transactions actually processed: (\d+)/.exec(out);
      if (code !== 0 || !tps || !lat || !done) return reject(new Error(`pgbench failed (${code}):\n${out}`));
      const result: Result = { tps: Number(tps[1]), latency_ms: Number(lat[1]) };
      if (proxy) result.cpu = perTransactionUs(cpuSeconds(proxy.pid, before!, sampleCpu(proxy.pid), proxy.split), Number(done[1]));
      resolve(result);
    });
  });
}

async function startPgbouncer(): Promise<{ port: number; pid: number; stop(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'pgbouncer-'));
  chmodSync(dir, 0o777);
  const port = await freePort();
  writeFileSync(join(dir, 'users.txt'), '"postgres" ""\n');
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]
${DB} = host=127.0.0.1 port=5432 dbname=${DB}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
auth_type = trust
auth_file = ${join(dir, 'users.txt')}
pool_mode = transaction
max_client_conn = 200
default_pool_size = ${CLIENTS * 2}
logfile = ${join(dir, 'pgbouncer.log')}
pidfile = ${join(dir, 'pgbouncer.pid')}
unix_socket_dir =
`,
  );
  // pgbouncer refuses to run as root: it runs as the postgres OS user, started directly (not via
  // runuser, which forks, does not pass SIGTERM on, and stops itself when its child is stopped), so
  // the child's pid is pgbouncer's own and SIGSTOP/SIGCONT/SIGTERM reach it alone.
  const child = spawn('pgbouncer', [join(dir, 'pgbouncer.ini')], { stdio: 'ignore', uid: osUserId('-u'), gid: osUserId('-g') });
  for (let i = 0; i < 100; i++) {
    const r = spawnSync('pg_isready', ['-h', '127.0.0.1', '-p', String(port), '-q']);
    if (r.status === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, pid: child.pid!, stop: () => child.kill('SIGTERM') };
}

/** The postgres OS user's uid (`-u`) or gid (`-g`). */
function osUserId(flag: '-u' | '-g'): number {
  return Number(sh('id', [flag, 'postgres']).trim());
}

/** Run `fn` with every proxy process but `name`'s stopped (when ISOLATE), resuming them after. */
async function isolated<T>(name: string, proxies: Record<string, Proxy>, fn: () => Promise<T>): Promise<T> {
  const others = ISOLATE ? Object.entries(proxies).filter(([k]) => k !== name).map(([, p]) => p) : [];
  for (const p of others) process.kill(p.pid, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    resumeAll(others);
  }
}

function resumeAll(proxies: Proxy[]): void {
  for (const p of proxies) {
    try {
      process.kill(p.pid, 'SIGCONT');
    } catch {
      // Already gone.
    }
  }
}

/** Per-role medians of the runs' CPU per transaction (roles taken separately). */
function cpuMedians(rs: Result[]): { cpu_us_per_tx?: CpuRoles } {
  if (!rs[0]?.cpu) return {};
  const roles = Object.keys(rs[0].cpu);
  return { cpu_us_per_tx: Object.fromEntries(roles.map((k) => [k, Math.round(median(rs.map((r) => r.cpu![k]!)) * 10) / 10])) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The paths a run can measure, in the order they run within a round. */
const ALL_PATHS = ['direct', 'pgbouncer', 'vigil', 'vigil+policy', 'vigil-gw', 'node-relay'] as const;
type PathName = (typeof ALL_PATHS)[number];
const ALL_WORKLOADS = { S: { name: 'select-only (-S)', selectOnly: true }, tpcb: { name: 'TPC-B (default)', selectOnly: false } } as const;

/** BENCH_PATHS / BENCH_WORKLOADS: comma-separated subsets (default: all); unknown names are an error. */
function selection<T extends string>(env: string | undefined, all: readonly T[], what: string): T[] {
  if (!env) return [...all];
  const picked = env.split(',').map((x) => x.trim()).filter(Boolean);
  const unknown = picked.filter((x) => !all.includes(x as T));
  if (unknown.length > 0 || picked.length === 0) throw new Error(`${what}: unknown ${unknown.join(', ') || '(empty)'}; choose from ${all.join(', ')}`);
  return all.filter((x) => picked.includes(x));
}

interface Path {
  conn: { host: string; port: number; user: string; db: string; password?: string };
  /** The process charged with the path's CPU (absent for direct). */
  proxy?: Proxy;
  /** For a full Vigil: where to ask whether ingest landed a run. */
  landed?: { api: number; token: string; sessions: number };
  stop(): Promise<unknown> | void;
}

async function startPath(name: PathName): Promise<Path> {
  const bench = async (v: Awaited<ReturnType<typeof startVigil>>, withIngest: boolean): Promise<Path> => ({
    conn: { host: '127.0.0.1', port: v.gatewayPort, user: 'bench', db: `local-pg/${DB}`, password: await v.token('bench', { ttl: '2h', groups: ['analyst', 'app'] }) },
    proxy: { pid: v.child.pid!, split: true },
    landed: withIngest ? { api: v.apiPort, token: await v.token('bench-reader', { ttl: '2h', roles: ['analyst'] }), sessions: 0 } : undefined,
    stop: () => v.stop(),
  });
  switch (name) {
    case 'direct':
      return { conn: { host: '127.0.0.1', port: 5432, user: 'postgres', db: DB }, stop: () => {} };
    case 'pgbouncer': {
      const b = await startPgbouncer();
      return { conn: { host: '127.0.0.1', port: b.port, user: 'postgres', db: DB }, proxy: { pid: b.pid, split: false }, stop: () => b.stop() };
    }
    case 'node-relay': {
      const r = await startNodeRelay();
      return { conn: { host: '127.0.0.1', port: r.port, user: 'postgres', db: DB }, proxy: { pid: r.pid, split: false }, stop: () => r.stop() };
    }
    case 'vigil':
      return bench(await startVigil(), true);
    case 'vigil-gw':
      return bench(await startVigil({ command: 'gateway' }), false);
    case 'vigil+policy': {
      const policyFile = fileURLToPath(new URL('./policy.yaml', import.meta.url));
      return bench(await startVigil({ config: { gateway: { id: 'gw-bench-policy', policy_file: policyFile } } }), true);
    }
  }
}

async function main(): Promise<void> {
  const selected = selection(process.env.BENCH_PATHS, ALL_PATHS, 'BENCH_PATHS');
  const workloads = selection(process.env.BENCH_WORKLOADS, Object.keys(ALL_WORKLOADS) as (keyof typeof ALL_WORKLOADS)[], 'BENCH_WORKLOADS').map((k) => ALL_WORKLOADS[k]);
  // Fresh pgbench database.
  sh('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-qc', `DROP DATABASE IF EXISTS ${DB}`]);
  sh('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-qc', `CREATE DATABASE ${DB}`]);
  sh('pgbench', ['-h', '127.0.0.1', '-U', 'postgres', '-i', '-q', '-s', String(SCALE), DB]);

  const paths: Partial<Record<PathName, Path>> = {};
  const proxies: Record<string, Proxy> = {};
  // Interrupted mid-run (Ctrl-C): no proxy may be left stopped, nor running on without the bench.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      const all = Object.values(proxies);
      resumeAll(all);
      for (const p of all) {
        try {
          process.kill(p.pid, 'SIGTERM');
        } catch {
          // Already gone.
        }
      }
      process.exit(130);
    });
  }
  try {
    for (const name of selected) {
      const path = await startPath(name);
      paths[name] = path;
      if (path.proxy) proxies[name] = path.proxy;
    }
    const catchUp: Record<string, number[]> = Object.fromEntries(selected.filter((n) => paths[n]!.landed).map((n) => [n, []]));
    const report: Record<string, Partial<Record<PathName, { tps: number; latency_ms: number; runs: number[]; cpu_us_per_tx?: CpuRoles }>>> = {};
    console.log(`pgbench: ${CLIENTS} clients, ${SECONDS} s per run, ${ROUNDS} interleaved rounds, scale ${SCALE}, ${ISOLATE ? 'each path alone (the other proxies stopped during its runs)' : 'all proxies running side by side'}; paths: ${selected.join(', ')}`);
    for (const w of workloads) {
      const runs: Partial<Record<PathName, Result[]>> = Object.fromEntries(selected.map((k) => [k, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const name of selected) {
          const path = paths[name]!;
          const r = await isolated(name, proxies, () => pgbench(path.conn, w.selectOnly, path.proxy));
          runs[name]!.push(r);
          let landing = '';
          if (path.landed) {
            path.landed.sessions += CLIENTS;
            const s = await waitLanded(path.landed.api, path.landed.token, path.landed.sessions);
            catchUp[name]!.push(s);
            landing = `  (ingest landed the run ${s.toFixed(1)} s after it ended)`;
          }
          console.log(`  ${w.name.padEnd(18)} round ${round + 1} ${name.padEnd(12)} ${r.tps.toFixed(0).padStart(7)} tps  ${r.latency_ms.toFixed(3)} ms${landing}`);
        }
      }
      report[w.name] = Object.fromEntries(
        Object.entries(runs).map(([k, rs]) => [k, { tps: median(rs.map((r) => r.tps)), latency_ms: median(rs.map((r) => r.latency_ms)), runs: rs.map((r) => Math.round(r.tps)), ...cpuMedians(rs) }]),
      );
    }
    // Ratios whose both ends were measured.
    const RATIOS: [label: string, of: PathName, to: PathName][] = [
      ['vigil/pgbouncer', 'vigil', 'pgbouncer'],
      ['vigil-gw/pgbouncer', 'vigil-gw', 'pgbouncer'],
      ['vigil/direct', 'vigil', 'direct'],
      ['policy cost (vigil+policy/vigil)', 'vigil+policy', 'vigil'],
      ['node-relay/pgbouncer', 'node-relay', 'pgbouncer'],
      ['vigil/node-relay', 'vigil', 'node-relay'],
    ];
    const ratios = RATIOS.filter(([, a, b]) => selected.includes(a) && selected.includes(b));
    console.log('\nmedian TPS / average latency, and ratios (same run):');
    console.log(`${'workload'.padEnd(20)}${selected.map((n) => n.padEnd(18)).join('')}${ratios.map(([l]) => l.padStart(l.length + 2)).join('')}`);
    for (const [name, r] of Object.entries(report)) {
      const cell = (x: { tps: number; latency_ms: number }) => `${x.tps.toFixed(0).padStart(6)} ${x.latency_ms.toFixed(3).padStart(7)} ms`.padEnd(18);
      const ratio = ([l, a, b]: (typeof RATIOS)[number]) => (r[a]!.tps / r[b]!.tps).toFixed(2).padStart(l.length + 2);
      console.log(`${name.padEnd(20)}${selected.map((n) => cell(r[n]!)).join('')}${ratios.map(ratio).join('')}`);
    }
    console.log('\nproxy CPU per transaction, µs (medians of the same runs; Vigil by thread: socket / log / ingest / other):');
    for (const [name, r] of Object.entries(report)) {
      const parts = Object.entries(r)
        .filter(([, x]) => x.cpu_us_per_tx)
        .map(([path, x]) => {
          const c = x.cpu_us_per_tx!;
          const split = c.socket === undefined ? '' : ` (${[c.socket, c.log, c.ingest, c.other].map((v) => v!.toFixed(1)).join(' / ')})`;
          return `${path} ${c.total!.toFixed(1)}${split}`;
        });
      console.log(`  ${name.padEnd(18)} ${parts.join('; ')}`);
    }
    if (Object.keys(catchUp).length > 0) {
      console.log(`\ningest catch-up after a run (s, every run in order): ${Object.entries(catchUp).map(([n, xs]) => `${n} ${xs.map((s) => s.toFixed(1)).join(', ')}`).join('; ')}`);
    }
    mkdirSync('bench-results', { recursive: true });
    writeFileSync('bench-results/pg.json', JSON.stringify({ date: new Date().toISOString(), clients: CLIENTS, seconds: SECONDS, rounds: ROUNDS, scale: SCALE, isolate: ISOLATE, paths: selected, report, ingest_catch_up_s: catchUp }, null, 2));
  } finally {
    resumeAll(Object.values(proxies));
    for (const p of Object.values(paths)) await p.stop();
  }
}

/**
 * Seconds until ingest has landed the run: at least `expected` ended sessions of the bench user in
 * the API, and none of its sessions live. Ingest reads the log in order, so once the run's client
 * sessions show ended, every session.started before them has landed too (pgbench may open one more
 * connection than it has clients, hence "no live session" as well).
 */
async function waitLanded(apiPort: number, token: string, expected: number): Promise<number> {
  const started = performance.now();
  const deadline = started + 600_000;
  const list = async (live: boolean) => {
    const res = await fetch(`http://127.0.0.1:${apiPort}/api/sessions?sub=bench&live=${live}&limit=500`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET /api/sessions: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { items: unknown[] }).items.length;
  };
  for (;;) {
    if ((await list(false)) >= expected && (await list(true)) === 0) return (performance.now() - started) / 1000;
    if (performance.now() > deadline) throw new Error(`ingest did not land ${expected} sessions within 600 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The bare Node relay in a process of its own (not on this driver's event loop). */
async function startNodeRelay(): Promise<{ port: number; pid: number; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./node-relay.ts', import.meta.url)), '5432'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`node relay exited ${code}`)));
  });
  return { port, pid: child.pid!, stop: () => child.kill('SIGTERM') };
}

await main().catch((err: Error) => {
  console.error(`bench:pg: ${err.message}`);
  process.exit(1);
});
