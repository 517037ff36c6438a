import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usableCpus, plan, threadId, affinityOf } from './affinity.ts';

test('Cpus_allowed_list is parsed: ranges, lists, single CPUs; unknown when absent', () => {
  assert.deepEqual(usableCpus('Name:\tnode\nCpus_allowed_list:\t0-3\n'), [0, 1, 2, 3]);
  assert.deepEqual(usableCpus('Cpus_allowed_list:\t0,2,5-6\n'), [0, 2, 5, 6]);
  assert.deepEqual(usableCpus('Cpus_allowed_list:\t7\n'), [7]);
  assert.equal(usableCpus('Name:\tnode\n'), undefined);
  assert.equal(usableCpus(''), undefined);
});

test('placement: socket thread on the first usable CPU, log thread on the last; skipped below two', () => {
  assert.deepEqual(plan([0, 1]), { socket_cpu: 0, log_cpu: 1 });
  assert.deepEqual(plan([2, 5, 6]), { socket_cpu: 2, log_cpu: 6 });
  assert.match((plan([3]) as { skipped: string }).skipped, /only 1 usable CPU/);
  assert.match((plan(undefined) as { skipped: string }).skipped, /unknown/);
});

test('this thread: its kernel id is known and its mask is readable (Linux)', () => {
  const tid = threadId();
  assert.equal(tid, process.pid, 'the main thread id is the process id');
  const cpus = affinityOf(tid!);
  assert.ok(cpus && cpus.length >= 1);
});
