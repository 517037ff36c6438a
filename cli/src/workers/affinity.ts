/**
 * CPU affinity for the gateway's two hot threads (gateway.cpu_affinity): the socket thread on the
 * first usable CPU, the log thread on the last. Node has no sched_setaffinity binding, so this uses
 * util-linux's `taskset` on a thread id. It runs after every thread of the process has started:
 * a thread inherits its creator's mask, and the ingest, store and libuv pool threads must keep
 * the whole machine.
 */
import { readFileSync } from 'node:fs';
import { runUtil } from './os-thread.ts';

export { threadId } from './os-thread.ts';

/** CPUs this process may run on (Linux `Cpus_allowed_list`), or undefined when unknown. */
export function usableCpus(status = safeRead('/proc/self/status')): number[] | undefined {
  const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(status ?? '');
  if (!m) return undefined;
  const cpus: number[] = [];
  for (const part of m[1]!.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (!Number.isInteger(a)) return undefined;
    for (let c = a!; c <= (b ?? a!); c++) cpus.push(c);
  }
  return cpus;
}

export interface Placement {
  socket_cpu: number;
  log_cpu: number;
}

/** Where the two threads go, or why they stay where they are. */
export function plan(cpus: number[] | undefined): Placement | { skipped: string } {
  if (!cpus) return { skipped: 'CPU list unknown (not Linux)' };
  if (cpus.length < 2) return { skipped: `only ${cpus.length} usable CPU` };
  return { socket_cpu: cpus[0]!, log_cpu: cpus[cpus.length - 1]! };
}

/** Pin thread `tid` to `cpu`. Throws with taskset's message on failure. */
export function pin(tid: number, cpu: number): void {
  runUtil('taskset', ['--pid', '--cpu-list', String(cpu), String(tid)]);
}

/** CPUs thread `tid` may run on now. */
export function affinityOf(tid: number): number[] | undefined {
  return usableCpus(safeRead(`/proc/${process.pid}/task/${tid}/status`));
}

function safeRead(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
