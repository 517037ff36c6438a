/**
 * The little of Linux's per-thread scheduling that Node does not bind: this thread's kernel id,
 * and running a util-linux tool (chrt, taskset; essential packages on Debian) on a thread id.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/** This thread's kernel id (Linux), or undefined elsewhere. */
export function threadId(): number | undefined {
  try {
    return Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}

/**
 * Name this thread (Linux `comm`, at most 15 bytes), so `top -H`, `ps -L`, `perf` and the bench's
 * per-thread CPU accounting tell Vigil's threads apart (Node leaves every worker named "node").
 * Threads this one starts later inherit the name. A no-op where /proc is missing; never throws.
 */
export function nameThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // Not Linux, or /proc not mounted: the name is only a convenience.
  }
}

/** Run `tool args…`; throws with the tool's own message when it fails or is missing. */
export function runUtil(tool: string, args: string[]): void {
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.error?.message ?? (r.stderr.trim() || `${tool} exited ${r.status}`));
}
