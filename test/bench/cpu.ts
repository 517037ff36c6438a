/**
 * CPU time of a process by thread role, read from /proc (Linux): what each proxy spends per
 * transaction, measured over the same pgbench run as its throughput. Vigil names its worker threads
 * (vigil-log, vigil-ingest; cli/src/workers/os-thread.ts), so its time splits into:
 *   socket  the main thread (tid = pid): sockets, framing, the copy into the recorder batch
 *           (in `vigil start` also the API, idle during a run)
 *   log     the log thread: sealing, the hash chain, the log's record encoding and fsync
 *   ingest  the ingest thread and the threads it started
 *   other   everything else: V8's collector helpers, libuv's pool, chDB's own pools
 * Any other process (pgbouncer, the Node relay) is one role, `total`.
 * A thread that exits during the window loses its time from the sum (none of ours do in a run).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export type CpuSample = Map<number, { comm: string; ticks: number }>;

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of every thread of `pid`, in clock ticks. */
export function sampleCpu(pid: number): CpuSample {
  const out: CpuSample = new Map();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      // Fields after "(comm) ": state is field 3, utime 14, stime 15 (1-based, man 5 proc).
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      out.set(Number(t), { comm, ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // The thread exited between readdir and read.
    }
  }
  return out;
}

export type CpuRoles = Record<string, number>;

function roleOf(pid: number, tid: number, comm: string, split: boolean): string {
  if (!split) return 'total';
  if (tid === pid) return 'socket';
  if (comm === 'vigil-log') return 'log';
  if (comm === 'vigil-ingest') return 'ingest';
  return 'other';
}

/**
 * Seconds of CPU per role between two samples. `split` groups a Vigil process by thread role;
 * otherwise everything is `total`. A Vigil split also carries `total`.
 */
export function cpuSeconds(pid: number, before: CpuSample, after: CpuSample, split: boolean): CpuRoles {
  const roles: CpuRoles = split ? { socket: 0, log: 0, ingest: 0, other: 0, total: 0 } : { total: 0 };
  for (const [tid, a] of after) {
    const s = (a.ticks - (before.get(tid)?.ticks ?? 0)) / CLK_TCK;
    roles[roleOf(pid, tid, a.comm, split)]! += s;
    if (split) roles.total! += s;
  }
  return roles;
}

/** Per-transaction µs of each role. */
export function perTransactionUs(seconds: CpuRoles, transactions: number): CpuRoles {
  return Object.fromEntries(Object.entries(seconds).map(([k, s]) => [k, (s * 1e6) / Math.max(1, transactions)]));
}
