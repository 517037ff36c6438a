/**
 * gateway.cpu_affinity: auto, on the real process: after start the socket thread (the main thread)
 * runs on the first usable CPU and the log thread (named by id in the log line) on the last, while
 * the ingest thread and Node's pools keep the whole machine; `off` leaves both hot threads
 * unpinned. (chDB pins a few threads of its own, whatever the setting: they are not ours to test.)
 * Also ingest.thread_policy: the ingest thread runs at SCHED_IDLE by default, and not with `normal`;
 * and the log and ingest threads carry their names (vigil-log, vigil-ingest).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { startVigil } from '../support/vigil-process.ts';
import { usableCpus } from '../../cli/src/workers/affinity.ts';

const machine = usableCpus()!;

/** Threads whose scheduling policy is SCHED_IDLE (field 41 of /proc/…/stat is the policy; 5 = SCHED_IDLE). */
function idleThreads(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`)
    .map(Number)
    .filter((t) => {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[41 - 3] === '5';
    });
}

function commOf(pid: number, tid: number): string {
  return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
}

function masks(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'));
    out.set(Number(t), m![1]!);
  }
  return out;
}

test('auto: socket thread and log thread pinned apart, the rest of the process unpinned', { timeout: 120_000 }, async () => {
  assert.ok(machine.length >= 2, `this test needs two usable CPUs (the CI machine has ${machine.length}); placement is skipped below two`);
  const vigil = await startVigil({ ready: 'api' });
  try {
    const deadline = Date.now() + 30_000;
    while (!/gateway threads pinned/.test(vigil.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const line = /"socket_cpu":(\d+),"log_cpu":(\d+),"log_thread_id":(\d+),"msg":"gateway threads pinned/.exec(vigil.output());
    assert.ok(line, vigil.output());
    const pid = vigil.child.pid!;
    const m = masks(pid);
    const first = String(machine[0]);
    const last = String(machine[machine.length - 1]);
    assert.deepEqual([line[1], line[2]], [first, last]);
    assert.equal(m.get(pid), first, 'the socket thread');
    assert.equal(m.get(Number(line[3])), last, 'the log thread');
    const whole = [...m.values()].filter((mask) => usableCpus(`Cpus_allowed_list:\t${mask}`)!.length === machine.length);
    assert.ok(whole.length > m.size / 2, `most threads (ingest, store, pools) keep every CPU: ${[...m.values()].join(' ')}`);
    // ingest.thread_policy: idle (the default) — the ingest thread, and none of the hot ones.
    const idle = idleThreads(pid);
    assert.ok(idle.length >= 1, 'the ingest thread runs at SCHED_IDLE');
    assert.ok(!idle.includes(pid) && !idle.includes(Number(line[3])), 'the socket and log threads do not');
    // Named threads (top -H, perf, bench:pg's CPU accounting): the log thread by the id it logged,
    // and the ingest thread among the SCHED_IDLE ones.
    assert.equal(commOf(pid, Number(line[3])), 'vigil-log');
    assert.ok(idle.some((t) => commOf(pid, t) === 'vigil-ingest'), `an idle thread is named vigil-ingest: ${idle.map((t) => commOf(pid, t)).join(' ')}`);
    assert.notEqual(commOf(pid, pid), 'vigil-log', 'the main thread keeps its own name');
  } finally {
    await vigil.stop();
  }
});

test('off: no thread is pinned; ingest.thread_policy normal: no thread at SCHED_IDLE', { timeout: 120_000 }, async () => {
  const vigil = await startVigil({ ready: 'api', config: { gateway: { cpu_affinity: 'off' }, ingest: { thread_policy: 'normal' } } });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    assert.doesNotMatch(vigil.output(), /gateway threads pinned/);
    const m = masks(vigil.child.pid!);
    assert.equal(usableCpus(`Cpus_allowed_list:\t${m.get(vigil.child.pid!)}`)!.length, machine.length, 'the socket thread keeps every CPU');
    const whole = [...m.values()].filter((mask) => usableCpus(`Cpus_allowed_list:\t${mask}`)!.length === machine.length);
    assert.ok(m.size - whole.length <= 4, `only chDB's own pinned threads are pinned: ${[...m.values()].join(' ')}`);
    assert.deepEqual(idleThreads(vigil.child.pid!), []);
  } finally {
    await vigil.stop();
  }
});
